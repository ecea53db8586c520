package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// Start implements api.Runner: it splits the session of a backup job into
// one task per VM disk and queues them. It returns once the tasks are
// recorded and queued.
func (or *Orchestrator) Start(ctx context.Context, se configdb.Session, j configdb.Job) error {
	<-or.ready
	if j.Kind == jobdef.KindMaintenance {
		return or.startMaintenance(ctx, se, j)
	}
	if j.Kind == jobdef.KindCopy {
		return or.startCopy(ctx, se, j)
	}
	rs, batches, err := or.build(ctx, se, j, func(vm, disk string) (configdb.Task, error) {
		return or.store.CreateTask(ctx, configdb.Task{SessionID: se.ID, VM: vm, Disk: disk})
	})
	if err != nil {
		return err
	}
	return or.enqueue(ctx, rs, batches)
}

// build makes the run of a backup job's session: the definition checked,
// the VMs selected, one task per VM disk (its row from taskRow), and the
// scheduler batches, one per VM.
func (or *Orchestrator) build(ctx context.Context, se configdb.Session, j configdb.Job,
	taskRow func(vm, disk string) (configdb.Task, error)) (*runSession, [][]scheduler.Task, error) {
	if j.Kind != "" && j.Kind != taskproto.KindBackup {
		return nil, nil, fmt.Errorf("%w: job kind %q cannot run (only backup, maintenance and copy jobs)", taskproto.ErrInvalid, j.Kind)
	}
	def, err := parseDefinition(j.Definition)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", taskproto.ErrInvalid, err)
	}
	sel, err := or.selectVMs(ctx, &def, j.Name)
	if err != nil {
		return nil, nil, err
	}
	pw, err := or.jobPassword(ctx, j.Name, def)
	if err != nil {
		return nil, nil, err
	}
	rs := &runSession{id: se.ID, job: j.Name, kind: taskproto.KindBackup, def: def, password: string(pw),
		repo: def.Repository, started: or.now(), warnings: sel.warnings}
	if def.Guest.Enabled() && def.GuestKeySecret != "" {
		if rs.guestKey, err = or.store.GetSecret(ctx, def.GuestKeySecret); err != nil {
			return nil, nil, fmt.Errorf("job %s: guest SSH key: %w", j.Name, err)
		}
	}
	var batches [][]scheduler.Task
	for _, v := range def.VMs {
		vm := &vmRun{name: v.Name, def: v, sess: rs, key: scheduler.VMKey{JobID: sessionKey(se.ID), VM: v.Name},
			disks: make([]jsonRaw, len(v.Disks)), vsphere: sel.logins[v.Name], libvirt: sel.libvirt[v.Name]}
		rs.vms = append(rs.vms, vm)
		var batch []scheduler.Task
		for i, disk := range v.Disks {
			spec, err := source.Parse(disk)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: VM %s disk %d: %w", taskproto.ErrInvalid, v.Name, i, err)
			}
			if spec.Kind == source.KindVSphere && vm.vsphere == nil {
				if vm.vsphere, err = or.listedVSphereLogin(ctx, spec); err != nil {
					return nil, nil, fmt.Errorf("%w: VM %s: %w", taskproto.ErrInvalid, v.Name, err)
				}
			}
			diskName := strconv.Itoa(i)
			if spec.WholeVM() {
				diskName = "all" // the proxy finds the VM's disks in its snapshot
			}
			row, err := taskRow(v.Name, diskName)
			if err != nil {
				return nil, nil, err
			}
			tr := &taskRun{row: row, sess: rs, vm: vm, disk: i, source: disk, spec: spec, wholeVM: spec.WholeVM()}
			rs.tasks = append(rs.tasks, tr)
			ts := spec.TransportsFor(source.Transport(def.Transport))
			if len(ts) == 0 {
				return nil, nil, fmt.Errorf("%w: VM %s disk %d (%s) cannot be read with transport %s", taskproto.ErrInvalid,
					v.Name, i, spec, def.Transport)
			}
			batch = append(batch, scheduler.Task{ID: taskKey(row.ID), JobID: sessionKey(se.ID), VM: v.Name,
				Disk: strconv.Itoa(i), SourceID: tr.reachKey(), RepositoryID: def.Repository, Transports: ts})
		}
		batches = append(batches, batch)
	}
	return rs, batches, nil
}

// selectVMs resolves the job's selection (if any) into def.VMs.
func (or *Orchestrator) selectVMs(ctx context.Context, def *jobdef.Definition, job string) (selection, error) {
	if len(def.Select) == 0 {
		return selection{}, nil
	}
	sel, err := or.resolveSelection(ctx, def)
	if err != nil {
		return sel, fmt.Errorf("%w: %w", taskproto.ErrInvalid, err)
	}
	if len(def.VMs) == 0 {
		why := "its sources hold none matching"
		if len(sel.warnings) > 0 {
			why = strings.Join(sel.warnings, "; ")
		}
		return sel, fmt.Errorf("%w: job %s selects no VMs (%s)", taskproto.ErrInvalid, job, why)
	}
	if err := def.CheckVMs(); err != nil {
		return sel, fmt.Errorf("%w: %w", taskproto.ErrInvalid, err)
	}
	return sel, nil
}

// jobPassword checks that the job's repository is registered and returns
// the repository password the job holds.
func (or *Orchestrator) jobPassword(ctx context.Context, job string, def jobdef.Definition) ([]byte, error) {
	if _, err := or.store.GetAgent(ctx, configdb.AgentRepository, def.Repository); errors.Is(err, configdb.ErrNotFound) {
		return nil, fmt.Errorf("%w: repository %q is not registered (start its agent: holdfast repository --name %s --path DIR --join-token T)",
			taskproto.ErrInvalid, def.Repository, def.Repository)
	} else if err != nil {
		return nil, err
	}
	if def.PasswordSecret == "" {
		return nil, fmt.Errorf("%w: job %s has no repository password (give --password-file to job create or edit)", taskproto.ErrInvalid, job)
	}
	pw, err := or.store.GetSecret(ctx, def.PasswordSecret)
	if err != nil {
		return nil, fmt.Errorf("job %s: repository password: %w", job, err)
	}
	return pw, nil
}

// enqueue registers a session and submits its tasks, one VM at a time.
func (or *Orchestrator) enqueue(ctx context.Context, rs *runSession, batches [][]scheduler.Task) error {
	or.mu.Lock()
	if err := or.checkNotRunningLocked(rs); err != nil {
		or.mu.Unlock()
		return err
	}
	or.sessions[rs.id] = rs
	rs.pending = 0
	for _, tr := range rs.tasks {
		or.tasks[tr.row.ID] = tr
		if !tr.ended {
			rs.pending++ // a resumed session's committed VMs have ended
		}
	}
	for _, vm := range rs.vms {
		or.vms[vm.key] = vm
	}
	or.mu.Unlock()
	if _, err := or.store.UpdateSession(ctx, rs.id, configdb.StateRunning, nil); err != nil {
		or.forget(rs)
		return err
	}
	// The proxies' reach must cover the new sources before they queue.
	if err := or.syncAgents(ctx); err != nil {
		or.log.Warn("read agents", "err", err)
	}
	for _, b := range batches {
		if err := or.sched.Submit(b...); err != nil {
			or.forget(rs)
			return err
		}
	}
	or.log.Info("session started", "session", rs.id, "job", rs.job, "kind", rs.kind, "tasks", len(rs.tasks))
	return nil
}

// checkNotRunningLocked refuses a second run of a job while one runs
// (or.mu held): the API refuses it before, this closes the race of two
// requests at once. Restores and mounts of a job's points are not runs.
func (or *Orchestrator) checkNotRunningLocked(rs *runSession) error {
	if rs.job == "" || (rs.kind != taskproto.KindBackup && rs.kind != jobdef.KindMaintenance && rs.kind != jobdef.KindCopy) {
		return nil
	}
	for _, other := range or.sessions {
		if other.job == rs.job && other.kind == rs.kind && other.id != rs.id {
			return fmt.Errorf("%w: job %s is already running (session %d)", configdb.ErrConflict, rs.job, other.id)
		}
	}
	return nil
}

func (or *Orchestrator) forget(rs *runSession) {
	or.mu.Lock()
	defer or.mu.Unlock()
	delete(or.sessions, rs.id)
	for _, tr := range rs.tasks {
		delete(or.tasks, tr.row.ID)
		tr.markTakenLocked()
	}
	for _, vm := range rs.vms {
		delete(or.vms, vm.key)
	}
}
