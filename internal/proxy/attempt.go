package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/fsmap"
	"sync/atomic"
	"time"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/sourceurl"
	"github.com/holdfast-backup/holdfast/internal/throttle"
)

// attempt is one running task attempt.
type attempt struct {
	spec   *taskproto.Spec
	timing pipeline.Timing
	client atomic.Pointer[mover.Client]
	total  atomic.Int64
	done   atomic.Int64
	info   atomic.Pointer[[]byte] // a mount's session record, once serving
}

// counters reads the attempt's counters so far.
func (at *attempt) counters() (taskproto.Counters, taskproto.Stages) {
	c := taskproto.Counters{BytesTotal: at.total.Load(), BytesDone: at.done.Load()}
	st := taskproto.Stages{SourceNanos: at.timing.Read.Load(), ProxyNanos: at.timing.Hash.Load()}
	if mc := at.client.Load(); mc != nil {
		s := mc.Stats()
		c.BytesTransferred = s.BytesSent + s.BytesReceived
		st.ProxyNanos += s.SealNanos
		st.TargetNanos = s.TargetNanos
		st.NetworkNanos = max(0, s.UploadNanos-s.TargetNanos)
	}
	return c, st
}

// runAttempt runs an attempt, reporting progress until it ends. Progress
// answered "stale" cancels it.
func (p *Proxy) runAttempt(ctx context.Context, spec *taskproto.Spec) taskproto.Result {
	start := p.o.Clock.Now()
	at := &attempt{spec: spec}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		t := time.NewTicker(p.o.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			c, st := at.counters()
			pr := taskproto.Progress{TaskID: spec.TaskID, Attempt: spec.Attempt, Counters: c, Stages: st}
			if info := at.info.Load(); info != nil {
				pr.Info = *info
			}
			err := p.o.Server.TaskProgress(actx, pr)
			if errors.Is(err, taskproto.ErrStale) {
				p.log.Warn("the server moved this task elsewhere: cancelling the attempt", "task", spec.TaskID)
				cancel(err)
				return
			}
		}
	}()
	var res taskproto.Result
	var err error
	switch spec.Kind {
	case taskproto.KindBackup:
		res, err = p.backup(actx, at)
	case taskproto.KindRestore:
		res, err = p.restore(actx, at)
	case taskproto.KindMount:
		res, err = p.mount(actx, at)
	default:
		err = fmt.Errorf("unknown task kind %q", spec.Kind)
	}
	close(stop)
	<-reported
	if cause := context.Cause(actx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	res.TaskID, res.Attempt, res.Duration = spec.TaskID, spec.Attempt, p.o.Clock.Since(start)
	c, st := at.counters()
	res.BytesTotal, res.BytesDone, res.BytesTransferred = c.BytesTotal, c.BytesDone, c.BytesTransferred
	res.Stages = st
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

func (p *Proxy) options(at *attempt) pipeline.Options {
	o := pipeline.Options{Workers: p.o.Workers, Timing: &at.timing, Progress: func(n int64) { at.done.Add(n) }}
	if at.spec.ReadLimit > 0 {
		o.ReadLimit = throttle.NewBucket(at.spec.ReadLimit, 0, nil)
	}
	return o
}

// backup stores one disk of the VM's point in the shared session (or, for
// a qemu:// VM, all of its disks from one snapshot).
func (p *Proxy) backup(ctx context.Context, at *attempt) (taskproto.Result, error) {
	spec := at.spec
	var res taskproto.Result
	src, err := source.Parse(spec.Source)
	if err != nil {
		return res, err
	}
	switch src.Kind {
	case source.KindQEMU:
		return p.backupVM(ctx, at, src.Path)
	case source.KindVSphere:
		return p.backupVSphere(ctx, at, src)
	case source.KindLibvirt:
		return p.backupLibvirt(ctx, at, src)
	}
	disk, err := sourceurl.Open(ctx, src, sourceurl.Options{Format: spec.Format, FollowBacking: spec.FollowBacking})
	if err != nil {
		return res, err
	}
	defer disk.Close()
	at.total.Store(disk.Size())
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
	if len(spec.Previous) > 0 {
		prev = new(repo.Manifest)
		if err := json.Unmarshal(spec.Previous, prev); err != nil {
			return res, fmt.Errorf("previous point from the server: %w", err)
		}
	}
	chunk := spec.ChunkSize
	if chunk == 0 {
		chunk = c.Config().ChunkSize
	}
	dm, err := pipeline.BackupPointDisk(ctx, c, pipeline.DiskRequest{PointID: spec.PointID, Index: spec.Disk,
		Disk: disk, Previous: prev, ChunkSize: chunk, Logger: p.log, Exclude: exclusion(spec)}, p.options(at))
	if err != nil {
		return res, err
	}
	dm.Transport = spec.Transport
	if res.Disk, err = json.Marshal(dm); err != nil {
		return res, err
	}
	res.BytesRead, res.BytesWritten, res.Warnings = dm.Stats.BytesRead, dm.Stats.BytesStored, dm.Warnings
	return res, nil
}

// restore writes one disk of a point to the target path, which must lie
// beneath one of the proxy's restore roots (or be one of its restore
// devices); see pipeline.Confinement.
func (p *Proxy) restore(ctx context.Context, at *attempt) (taskproto.Result, error) {
	spec := at.spec
	var res taskproto.Result
	var m repo.Manifest
	if err := json.Unmarshal(spec.Previous, &m); err != nil {
		return res, fmt.Errorf("point from the server: %w", err)
	}
	c, err := p.repository(ctx, spec)
	if err != nil {
		return res, err
	}
	defer c.Close()
	at.client.Store(c)
	d, err := restorefs.OpenDisk(ctx, c, &m, spec.Disk, restorefs.StreamOptions())
	if err != nil {
		return res, err
	}
	defer d.Close()
	at.total.Store(d.Size())
	t, err := pipeline.OpenTarget(ctx, spec.Target, d.Size(), pipeline.TargetOptions{Force: spec.Force,
		Confine: &pipeline.Confinement{Roots: p.o.RestoreRoots, Devices: p.o.RestoreDevices}})
	if err != nil {
		return res, err
	}
	st, err := pipeline.RestoreDisk(ctx, d, t.RestoreTarget, p.options(at))
	if err != nil {
		return res, t.Fail(err)
	}
	if err := t.Close(); err != nil {
		return res, err
	}
	res.BytesWritten = st.BytesWritten
	return res, nil
}

// exclusion is what the job leaves out of each disk.
func exclusion(spec *taskproto.Spec) fsmap.Options {
	return fsmap.Options{Free: spec.ExcludeFree, Swap: spec.ExcludeSwap, Paths: spec.ExcludePaths}
}
