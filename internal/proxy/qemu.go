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

// backupVM backs up every disk of the running QEMU VM whose QMP socket is
// sock in one attempt: the snapshot (dirty bitmaps, fleecing, exports; see
// internal/source/qemu) is taken here, on the proxy that reaches the VM's QMP socket, each disk is
// stored under the point in the VM's shared session, and the snapshot is
// released — telling QEMU the point is committed when every disk succeeded
// (the server commits it next; if that fails, the next backup notices the
// change-ID mismatch and reads whole disks, so no change is lost).
func (p *Proxy) backupVM(ctx context.Context, at *attempt, sock string) (taskproto.Result, error) {
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
	sess, err := qemu.Prepare(ctx, qemu.Options{QMP: sock, GuestAgent: spec.GuestAgent, Transport: source.Transport(spec.Transport),
		Tag: c.Config().ID[:8], PreviousChangeIDs: prevIDs, Logger: p.log})
	if err != nil {
		return res, err
	}
	committed := false
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := sess.Release(rctx, committed); err != nil {
			p.log.Warn("release the VM snapshot", "vm", spec.VM, "err", err)
		}
	}()
	res.Notes = map[string]string{"guest_quiesce": sess.Guest, "transport": string(sess.Transport), "transport_choice": sess.TransportNote}
	for k, v := range sess.Config {
		res.Notes[k] = v
	}
	if len(sess.Cleaned) > 0 {
		res.Notes["cleaned_leftovers"] = strings.Join(sess.Cleaned, ", ")
	}
	var total int64
	for _, d := range sess.Disks {
		total += d.Size()
	}
	at.total.Store(total)
	chunk := spec.ChunkSize
	if chunk == 0 {
		chunk = c.Config().ChunkSize
	}
	for i, d := range sess.Disks {
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
