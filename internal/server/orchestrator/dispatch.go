package orchestrator

import (
	"context"
	"errors"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// dispatchLoop takes assignments from the scheduler and puts them into the
// chosen proxy's mailbox, where its next poll picks them up.
func (or *Orchestrator) dispatchLoop(ctx context.Context) {
	for {
		a, err := or.sched.Next(ctx)
		if err != nil {
			return
		}
		or.mu.Lock()
		tr := or.tasks[atoi(a.Task.ID)]
		or.mu.Unlock()
		if tr == nil { // cannot happen: tasks are registered before Submit
			_, _ = or.sched.Done(a, errors.New("unknown task"))
			continue
		}
		if a.PrepareErr != nil {
			or.finishAttempt(ctx, tr, a, &taskproto.Result{TaskID: tr.row.ID, Attempt: tr.base + a.Attempt,
				Error: "prepare VM: " + a.PrepareErr.Error()})
			continue
		}
		or.mu.Lock()
		if !or.online[a.Proxy] {
			// The proxy was declared lost between Next and here: ProxyDown
			// already ended this attempt and requeued the task.
			or.mu.Unlock()
			continue
		}
		tr.assign, tr.attempt, tr.last = &a, tr.base+a.Attempt, taskproto.Progress{}
		row := tr.row
		row.Proxy, row.Repository, row.Transport, row.State, row.Attempt = a.Proxy, a.Repository, string(a.Transport), configdb.StateRunning, tr.attempt
		row.Error = ""
		tr.row = row
		or.mail[a.Proxy] = append(or.mail[a.Proxy], mailItem{tr, tr.attempt})
		or.wakeLocked(a.Proxy)
		or.mu.Unlock()
		or.saveTask(ctx, row)
		or.log.Info("task assigned", "session", tr.sess.id, "vm", tr.vm.name, "disk", tr.disk, "proxy", a.Proxy,
			"repository", a.Repository, "transport", a.Transport, "attempt", tr.attempt)
	}
}

// mailItem is an attempt waiting for its proxy's poll.
type mailItem struct {
	tr      *taskRun
	attempt int
}

// wakeLocked wakes the polls of a proxy waiting for work.
func (or *Orchestrator) wakeLocked(proxy string) {
	if ch, ok := or.wake[proxy]; ok {
		close(ch)
		delete(or.wake, proxy)
	}
}

// NextTask hands the proxy its next attempt, waiting up to wait for one.
// It returns nil when none came.
func (or *Orchestrator) NextTask(ctx context.Context, proxy string, wait time.Duration) (*taskproto.Spec, error) {
	<-or.ready
	or.touchProxy(ctx, proxy)
	timer := time.NewTimer(min(wait, taskproto.MaxWait))
	defer timer.Stop()
	for {
		or.mu.Lock()
		if q := or.mail[proxy]; len(q) > 0 {
			item := q[0]
			or.mail[proxy] = q[1:]
			tr := item.tr
			if tr.assign == nil || tr.attempt != item.attempt || tr.assign.Proxy != proxy {
				or.mu.Unlock()
				continue // stale: the attempt ended or moved meanwhile
			}
			spec := or.specLocked(tr)
			tr.markTakenLocked()
			or.mu.Unlock()
			if spec.Repository.URL = or.repoURL(spec.Repository.Name); spec.Repository.URL == "" {
				or.log.Warn("repository agent has no address yet", "repository", spec.Repository.Name)
			}
			return spec, nil
		}
		ch, ok := or.wake[proxy]
		if !ok {
			ch = make(chan struct{})
			or.wake[proxy] = ch
		}
		or.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// specLocked describes an attempt for the proxy.
func (or *Orchestrator) specLocked(tr *taskRun) *taskproto.Spec {
	rs, vm := tr.sess, tr.vm
	s := &taskproto.Spec{TaskID: tr.row.ID, Attempt: tr.attempt, SessionID: rs.id, Kind: rs.kind, VM: vm.name,
		Disk: tr.disk, Source: tr.source, Transport: string(tr.assign.Transport), Password: rs.password,
		Repository: taskproto.Repository{Name: tr.assign.Repository},
		Previous:   vm.previous, ChunkSize: rs.def.ChunkSize, Target: tr.target, Force: tr.force,
		ReadLimit: rs.def.ReadLimit, Throttle: rs.def.Throttle, GuestAgent: vm.def.GuestAgent,
		ExcludeFree: rs.def.ExcludeFree, ExcludeSwap: rs.def.ExcludeSwap, ExcludePaths: rs.def.ExcludePaths}
	if rs.kind == taskproto.KindBackup {
		s.Format, s.FollowBacking = diskFormat(&rs.def, tr.source)
	}
	if tr.wholeVM {
		// The snapshot picks its transport itself (direct → hotadd → nbd)
		// unless the job asks for one.
		s.Transport = rs.def.Transport
		if s.Transport == "" {
			s.Transport = string(source.TransportAuto)
		}
	}
	if vm.owner != nil {
		s.MoverSession, s.PointID = vm.owner.id, vm.pointID
	}
	if vm.libvirt != nil && rs.kind == taskproto.KindBackup {
		s.LibvirtURI = vm.libvirt.Address
	}
	if vm.vsphere != nil && rs.kind == taskproto.KindBackup {
		login := *vm.vsphere
		s.VSphere = &login
	}
	if rs.mount != nil {
		m := *rs.mount
		s.Mount = &m
	}
	if tr.scan {
		sa := *rs.def.ScanAfter
		s.Kind, s.Previous, s.Mount = taskproto.KindMount, tr.scanPoint, &taskproto.Mount{Scan: &sa}
		s.Source, s.Format, s.FollowBacking, s.GuestAgent = "", "", false, ""
	}
	return s
}

// repoURL is the base URL of a repository agent ("" if unknown).
func (or *Orchestrator) repoURL(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := or.store.GetAgent(ctx, configdb.AgentRepository, name)
	if err != nil || a.Address == "" {
		return ""
	}
	return "https://" + a.Address
}

// saveTask stores a task row; failures are logged (the in-memory state
// goes on, the next save catches up).
func (or *Orchestrator) saveTask(ctx context.Context, row configdb.Task) {
	if _, err := or.store.UpdateTask(context.WithoutCancel(ctx), row); err != nil {
		or.log.Warn("save task", "task", row.ID, "err", err)
	}
}
