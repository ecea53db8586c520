package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// ownerSession is the server's side of a VM's shared mover session.
type ownerSession struct {
	c    *mover.Client
	lock *repo.Lock
	id   string
}

// prepareVM opens the VM's shared mover session before its first disk
// starts: the point ID is chosen and the previous point looked up here,
// once for all disks.
func (or *Orchestrator) prepareVM(ctx context.Context, key scheduler.VMKey) error {
	or.mu.Lock()
	vm := or.vms[key]
	or.mu.Unlock()
	if vm == nil || vm.sess.kind != taskproto.KindBackup {
		return nil
	}
	if err := repo.ValidateVMName(vm.name); err != nil {
		return err // a VM selected from a source under a name no point can carry
	}
	rs := vm.sess
	g := rs.def.Guest
	if g.Enabled() {
		// Quiesce: the pre-freeze script, the snapshot (for image and NBD
		// sources, the VM's repository session and point), the
		// post-thaw script — which runs whenever pre-freeze ran.
		if err := or.runGuestScript(ctx, vm, "pre-freeze", g.PreFreeze); err != nil {
			if terr := or.runGuestScript(ctx, vm, "post-thaw", g.PostThaw); terr != nil {
				or.log.Warn("post-thaw after a failed pre-freeze", "vm", vm.name, "err", terr)
			}
			return err
		}
	}
	err := or.openVMSession(ctx, vm)
	if g.Enabled() {
		if terr := or.runGuestScript(ctx, vm, "post-thaw", g.PostThaw); terr != nil && err == nil {
			or.closeVMSession(vm)
			return terr
		}
	}
	return err
}

// openVMSession opens the VM's shared mover session, chooses the point ID
// and finds the previous point.
func (or *Orchestrator) openVMSession(ctx context.Context, vm *vmRun) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rs := vm.sess
	c, err := or.agentClient(ctx, rs)
	if err != nil {
		return err
	}
	lock, err := c.Lock(ctx, repo.LockShared)
	if err != nil {
		c.Close()
		return fmt.Errorf("open a session on repository %s: %w", rs.repo, err)
	}
	prev, err := previousManifest(ctx, c, vm.name)
	if err != nil {
		_ = lock.Release()
		c.Close()
		return err
	}
	or.mu.Lock()
	vm.owner = &ownerSession{c: c, lock: lock, id: c.SessionID()}
	vm.pointID, vm.previous, vm.started = c.NewPointID(), prev, or.now()
	or.mu.Unlock()
	return nil
}

// agentClient returns a client of the session's repository agent (the
// server's own certificate and the job's password).
func (or *Orchestrator) agentClient(ctx context.Context, rs *runSession) (*mover.Client, error) {
	url := or.repoURL(rs.repo)
	if url == "" {
		return nil, fmt.Errorf("repository %s has announced no address", rs.repo)
	}
	return or.mover.session(ctx, rs.repo, url, rs.password)
}

// closeVMSession ends the VM's mover session without committing.
func (or *Orchestrator) closeVMSession(vm *vmRun) {
	or.mu.Lock()
	owner := vm.owner
	vm.owner = nil
	or.mu.Unlock()
	if owner != nil {
		_ = owner.lock.Release()
		owner.c.Close()
	}
}

// previousManifest returns the VM's newest point as JSON, or nil.
func previousManifest(ctx context.Context, c *mover.Client, vm string) (json.RawMessage, error) {
	ms, err := c.ListPoints(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].VM == vm {
			return json.Marshal(ms[i])
		}
	}
	return nil, nil
}

// releaseVM runs after the VM's last disk ended: it commits the point if
// every disk succeeded, and ends the shared session either way.
func (or *Orchestrator) releaseVM(key scheduler.VMKey, prepareErr error) {
	or.mu.Lock()
	vm := or.vms[key]
	or.mu.Unlock()
	if vm == nil || vm.sess.kind != taskproto.KindBackup {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	or.mu.Lock()
	owner, failed := vm.owner, len(vm.failed) > 0
	disks := append([]jsonRaw(nil), vm.disks...)
	or.mu.Unlock()
	var m *repo.Manifest
	var err error
	switch {
	case prepareErr != nil:
		err = fmt.Errorf("prepare: %w", prepareErr)
	case owner == nil:
		err = fmt.Errorf("no repository session")
	case failed:
		err = nil // the disks' errors say why
	default:
		if m, err = or.commitVM(ctx, vm, owner, disks); err == nil {
			or.recordFormats(ctx, vm, m)
			or.retain(ctx, vm, owner)
		}
	}
	if owner != nil {
		if rerr := owner.lock.Release(); rerr != nil {
			or.log.Warn("end repository session", "vm", vm.name, "err", rerr)
		}
		owner.c.Close()
	}
	or.mu.Lock()
	if err != nil {
		vm.failed = append(vm.failed, err.Error())
	}
	vm.point, vm.done, vm.owner = m, true, nil
	retry := m == nil && len(vm.failed) > 0 && vm.retries < vm.sess.def.Retries.Count && !vm.sess.cancelled
	if retry {
		or.prepareRetryLocked(vm)
	}
	or.mu.Unlock()
	if retry {
		wait := time.Duration(vm.sess.def.Retries.WaitSeconds) * time.Second
		time.AfterFunc(wait, func() { or.resubmit(vm) })
	}
	if m != nil {
		or.log.Info("restore point committed", "session", vm.sess.id, "vm", vm.name, "point", m.ID, "repository", vm.sess.repo)
		or.queueScan(ctx, vm, m)
	}
}

// commitVM assembles the VM's manifest from its disks and commits it.
func (or *Orchestrator) commitVM(ctx context.Context, vm *vmRun, owner *ownerSession, disks []jsonRaw) (*repo.Manifest, error) {
	host, _ := os.Hostname()
	m := &repo.Manifest{ID: vm.pointID, VM: vm.name, Time: vm.started.UTC(), Hostname: host,
		Notes: map[string]string{"job": vm.sess.job, "session": itoa(vm.sess.id)}, Config: vm.config}
	for k, v := range vm.notes {
		m.Notes[k] = v
	}
	var total, stored int64
	if len(disks) == 0 {
		return nil, fmt.Errorf("no disks were backed up")
	}
	for i, raw := range disks {
		var d repo.DiskManifest
		if len(raw) == 0 || json.Unmarshal(raw, &d) != nil {
			return nil, fmt.Errorf("disk %d reported no manifest entry", i)
		}
		if d.Index != i {
			return nil, fmt.Errorf("disk %d reported as disk %d", i, d.Index)
		}
		total += d.Size
		stored += d.Stats.BytesStored
		m.Disks = append(m.Disks, d)
	}
	if err := owner.c.CommitPoint(ctx, m); err != nil {
		return nil, err
	}
	dj, _ := json.Marshal(m.Disks)
	_, err := or.store.RecordPoint(ctx, configdb.Point{ID: m.ID, Repository: vm.sess.repo, VM: vm.name,
		JobName: vm.sess.job, SessionID: vm.sess.id, Created: m.Time, Disks: dj, BytesTotal: total, BytesStored: stored})
	if err != nil {
		or.log.Warn("record point", "point", m.ID, "err", err)
	}
	return m, nil
}

// retain applies the job's GFS retention (repo.Policy, as standalone
// `forget`) to the VM's points the server recorded in this repository:
// the points the policy does not keep are forgotten on the agent (their
// chunks go at the next GC) and in the database. A held point is kept
// (the agent refuses it) and goes at a later run once released. Failures
// are warnings of the VM: the backup itself succeeded.
func (or *Orchestrator) retain(ctx context.Context, vm *vmRun, owner *ownerSession) {
	policy := vm.sess.def.Retention
	if policy.Empty() {
		return
	}
	ps, err := or.store.ListPoints(ctx, configdb.PointFilter{VM: vm.name, Repository: vm.sess.repo, Limit: 100000})
	if err != nil {
		or.warnVM(vm, "retention: "+err.Error())
		return
	}
	ms := make([]*repo.Manifest, 0, len(ps))
	for _, p := range ps {
		ms = append(ms, &repo.Manifest{ID: p.ID, VM: p.VM, Time: p.Created})
	}
	for _, d := range repo.ApplyPolicy(ms, policy, time.Local) {
		if d.Keep {
			continue
		}
		id := d.Point.ID
		if err := owner.c.ForgetPoint(ctx, id); errors.Is(err, repo.ErrPointHeld) || errors.Is(err, storage.ErrImmutable) {
			// In use (an instant recovery session serves it, a hold) or
			// younger than a hardened repository's window: kept, and
			// forgotten by a later run once released or old enough.
			or.warnVM(vm, "retention: point "+id+" kept: "+err.Error())
			continue
		} else if err != nil {
			or.warnVM(vm, "retention: "+err.Error())
			return
		}
		if err := or.store.DeletePoint(ctx, vm.sess.repo, id); err != nil && !errors.Is(err, configdb.ErrNotFound) {
			or.warnVM(vm, "retention: "+err.Error())
			return
		}
		or.mu.Lock()
		vm.forgotten = append(vm.forgotten, id)
		or.mu.Unlock()
		or.log.Info("retention: point forgotten", "vm", vm.name, "point", id, "policy", policy.String())
	}
}

func (or *Orchestrator) warnVM(vm *vmRun, msg string) {
	or.mu.Lock()
	vm.warnings = append(vm.warnings, msg)
	or.mu.Unlock()
	or.log.Warn(msg, "vm", vm.name)
}
