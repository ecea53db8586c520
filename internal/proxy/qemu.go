package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/qemu"
)

// snapshot is a whole VM's disks frozen for one attempt (a qemu:// or
// vsphere:// source): what the platform's session gives the pipeline.
type snapshot struct {
	disks    []source.Disk
	notes    map[string]string // into the point's manifest
	config   *repo.VMConfig    // the VM's configuration (nil: none)
	warnings []string
	// release ends the snapshot, telling the platform whether the point
	// is committed (the change IDs it recorded become the base).
	release func(ctx context.Context, committed bool) error
}

// takeSnapshot takes a whole VM's snapshot: tag names the repository (its
// ID's first 8 characters) and prevIDs are the change IDs of the previous
// point's disks, in disk order.
type takeSnapshot func(ctx context.Context, tag string, prevIDs []string) (*snapshot, error)

// backupVM backs up every disk of the running QEMU VM whose QMP socket is
// sock in one attempt: the snapshot (dirty bitmaps, fleecing, exports; see
// internal/source/qemu) is taken here, on the proxy that reaches the VM's
// QMP socket.
func (p *Proxy) backupVM(ctx context.Context, at *attempt, sock string) (taskproto.Result, error) {
	spec := at.spec
	return p.backupWholeVM(ctx, at, func(ctx context.Context, tag string, prevIDs []string) (*snapshot, error) {
		sess, err := qemu.Prepare(ctx, qemu.Options{QMP: sock, GuestAgent: spec.GuestAgent, Transport: source.Transport(spec.Transport),
			Tag: tag, PreviousChangeIDs: prevIDs, Logger: p.log})
		if err != nil {
			return nil, err
		}
		notes := map[string]string{"guest_quiesce": sess.Guest, "transport": string(sess.Transport), "transport_choice": sess.TransportNote}
		for k, v := range sess.Config {
			notes[k] = v
		}
		if len(sess.Cleaned) > 0 {
			notes["cleaned_leftovers"] = strings.Join(sess.Cleaned, ", ")
		}
		return &snapshot{disks: sess.Disks, notes: notes, release: sess.Release}, nil
	})
}

// backupWholeVM backs up every disk of a whole VM in one attempt: take
// snapshots it, each disk is stored under the point in the VM's shared
// session, and the snapshot is released — telling the platform the point
// is committed when every disk succeeded (the server commits it next; if
// that fails, the next backup notices the change-ID mismatch and reads
// whole disks, so no change is lost).
func (p *Proxy) backupWholeVM(ctx context.Context, at *attempt, take takeSnapshot) (taskproto.Result, error) {
	spec := at.spec
	var res taskproto.Result
	c, err := p.repository(ctx, spec)
	if err != nil {
		return res, err
	}
	defer c.Close()
	at.client.Store(c)
	if err := c.Attach(spec.MoverSession); err != nil {
		return res, err
	}
	defer c.Detach()
	var prev *repo.Manifest
	var prevIDs []string
	if len(spec.Previous) > 0 {
		prev = new(repo.Manifest)
		if err := json.Unmarshal(spec.Previous, prev); err != nil {
			return res, fmt.Errorf("previous point from the server: %w", err)
		}
		for _, d := range prev.Disks {
			prevIDs = append(prevIDs, d.ChangeID)
		}
	}
	snap, err := take(ctx, c.Config().ID[:8], prevIDs)
	if err != nil {
		return res, err
	}
	committed := false
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := snap.release(rctx, committed); err != nil {
			p.log.Warn("release the VM snapshot", "vm", spec.VM, "err", err)
		}
	}()
	res.Notes, res.Config, res.Warnings = snap.notes, snap.config, append(res.Warnings, snap.warnings...)
	var total int64
	for _, d := range snap.disks {
		total += d.Size()
	}
	at.total.Store(total)
	chunk := spec.ChunkSize
	if chunk == 0 {
		chunk = c.Config().ChunkSize
	}
	for i, d := range snap.disks {
		dm, err := pipeline.BackupPointDisk(ctx, c, pipeline.DiskRequest{PointID: spec.PointID, Index: i,
			Disk: d, Previous: prev, ChunkSize: chunk, Logger: p.log, Exclude: exclusion(spec)}, p.options(at))
		if err != nil {
			return res, err
		}
		b, err := json.Marshal(dm)
		if err != nil {
			return res, err
		}
		res.Disks = append(res.Disks, b)
		res.BytesRead += dm.Stats.BytesRead
		res.BytesWritten += dm.Stats.BytesStored
		res.Warnings = append(res.Warnings, dm.Warnings...)
	}
	committed = true
	return res, nil
}
