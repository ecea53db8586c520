package scheduler

import (
	"context"
	"fmt"
)

// VMKey names a VM session: the disks of one VM in one job.
type VMKey struct {
	JobID string
	VM    string
}

// VMHooks prepare and release a VM's snapshot. Either may be nil.
type VMHooks struct {
	// Prepare creates the VM's snapshot. It is called once per session,
	// before the VM's first disk task is handed out; the session's other
	// disk tasks wait for it, holding their slots. Its ctx carries the values, but not the
	// cancellation, of the Next call that runs it: bound it yourself.
	Prepare func(ctx context.Context, vm VMKey) error
	// Release removes the snapshot. It is called once per session after
	// the VM's last task ended, also when tasks or Prepare failed
	// (prepareErr is Prepare's result), so partial state can be cleaned.
	Release func(vm VMKey, prepareErr error)
}

// SetVMHooks sets the snapshot hooks; set them before submitting tasks.
func (s *Scheduler) SetVMHooks(h VMHooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = h
}

type sessionState int

const (
	sessionIdle sessionState = iota
	sessionPreparing
	sessionReady // prepared, successfully or not (err)
)

// vmSession counts a VM's unfinished tasks and holds its snapshot state.
type vmSession struct {
	key   VMKey
	refs  int // queued, starting and running tasks
	state sessionState
	err   error         // Prepare's result
	ready chan struct{} // closed when Prepare returned
}

// session returns the VM's session, creating it.
func (s *Scheduler) session(k VMKey) *vmSession {
	vs := s.vms[k]
	if vs == nil {
		vs = &vmSession{key: k}
		s.vms[k] = vs
	}
	return vs
}

// acquireVM makes sure the session is prepared: the first caller runs
// Prepare, later ones wait for it. It returns Prepare's error, or waitErr
// when ctx ended while waiting for another caller's Prepare.
func (s *Scheduler) acquireVM(ctx context.Context, vs *vmSession) (prepErr, waitErr error) {
	s.mu.Lock()
	if s.vms[vs.key] != vs {
		// All the session's tasks ended before we got here (ProxyDown
		// without requeue): our attempt is stale, commit notices.
		s.mu.Unlock()
		return nil, nil
	}
	switch vs.state {
	case sessionReady:
		defer s.mu.Unlock()
		return vs.err, nil
	case sessionPreparing:
		ready := vs.ready
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ready:
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return vs.err, nil
	}
	vs.state, vs.ready = sessionPreparing, make(chan struct{})
	prepare := s.hooks.Prepare
	s.mu.Unlock()
	return s.prepare(ctx, vs, prepare), nil
}

// prepare runs the Prepare hook and publishes its result to the waiters,
// also when the hook panics (the panic goes on).
func (s *Scheduler) prepare(ctx context.Context, vs *vmSession, hook func(context.Context, VMKey) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("scheduler: Prepare hook panicked: %v", r)
			defer panic(r)
		}
		s.mu.Lock()
		vs.state, vs.err = sessionReady, err
		close(vs.ready)
		release := s.releasableLocked(vs) // all tasks may have ended meanwhile
		s.mu.Unlock()
		release()
	}()
	if hook != nil {
		err = hook(context.WithoutCancel(ctx), vs.key)
	}
	return err
}

// releasableLocked forgets a session without tasks and returns the call of
// its Release hook (a no-op if it was never prepared or is still being
// prepared; the preparer checks again when Prepare returns).
func (s *Scheduler) releasableLocked(vs *vmSession) func() {
	if vs.refs > 0 || vs.state == sessionPreparing {
		return func() {}
	}
	if s.vms[vs.key] == vs {
		delete(s.vms, vs.key)
	}
	release := s.hooks.Release
	if vs.state != sessionReady || release == nil {
		return func() {}
	}
	vs.state = sessionIdle // released; never again
	key, err := vs.key, vs.err
	return func() { release(key, err) }
}
