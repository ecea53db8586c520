package scheduler

import (
	"context"
	"sort"
	"sync"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// Scheduler is the resource scheduler. The zero value is not usable; call
// New.
type Scheduler struct {
	clock clock.Clock

	mu      sync.Mutex
	hooks   VMHooks
	proxies map[string]*proxyState
	repos   map[string]*repoState
	tasks   map[string]*taskState // unfinished tasks by ID
	queue   queue
	vms     map[VMKey]*vmSession
	records map[string][]Record // ended attempts by job
	seq     uint64
	gen     uint64
	wake    chan struct{} // closed and replaced on every change
}

// New returns an empty scheduler reading time from clk (the real clock if
// nil).
func New(clk clock.Clock) *Scheduler {
	return &Scheduler{
		clock:   clock.Or(clk),
		proxies: make(map[string]*proxyState),
		repos:   make(map[string]*repoState),
		tasks:   make(map[string]*taskState),
		vms:     make(map[VMKey]*vmSession),
		records: make(map[string][]Record),
		wake:    make(chan struct{}),
	}
}

// Next blocks until a queued task can run, takes its proxy and repository
// slots, prepares the VM's snapshot if this is the VM's first disk to start
// (or waits for that), and returns the assignment. The caller must end it
// with Done. Next returns ctx.Err() when ctx ends first; a task it had
// picked then goes back to its place in the queue. A Prepare hook that
// Next runs is not interrupted by ctx: Next returns when it does.
func (s *Scheduler) Next(ctx context.Context) (Assignment, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Assignment{}, err
		}
		s.mu.Lock()
		ts := s.dispatchLocked()
		wake := s.wake
		var a Assignment
		var vs *vmSession
		if ts != nil {
			a, vs = ts.assignment(), s.vms[ts.task.vm()]
		}
		s.mu.Unlock()
		if ts == nil {
			select {
			case <-ctx.Done():
				return Assignment{}, ctx.Err()
			case <-wake:
			}
			continue
		}
		prepErr, waitErr := s.acquireVM(ctx, vs)
		if a, ok, err := s.commit(ctx, a, prepErr, waitErr); ok || err != nil {
			return a, err
		}
	}
}

// commit turns a starting attempt into a running one after the VM was
// prepared. ok is false when the attempt was lost meanwhile (ProxyDown);
// err is set when ctx ended, after putting the task back.
func (s *Scheduler) commit(ctx context.Context, a Assignment, prepErr, waitErr error) (Assignment, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.tasks[a.Task.ID]
	if ts == nil || ts.state != stateStarting || ts.gen != a.gen {
		return Assignment{}, false, nil
	}
	if waitErr == nil {
		waitErr = ctx.Err()
	}
	if waitErr != nil {
		s.freeLocked(ts)
		s.enqueueLocked(ts)
		s.wakeLocked()
		return Assignment{}, false, waitErr
	}
	ts.state = stateRunning
	a.PrepareErr = prepErr
	return a, true, nil
}

// dispatchLocked takes the first runnable task in queue order and reserves
// its slots, or returns nil.
func (s *Scheduler) dispatchLocked() *taskState {
	for _, ts := range s.queue.items {
		c, reason, _ := s.choose(&ts.task)
		if reason != Runnable {
			continue
		}
		s.queue.remove(ts)
		s.gen++
		ts.state, ts.gen = stateStarting, s.gen
		ts.proxy, ts.repo, ts.transport = c.proxy.cfg.ID, c.repo.cfg.ID, c.transport
		ts.start = s.clock.Now()
		c.proxy.used++
		c.repo.used++
		return ts
	}
	return nil
}

func (ts *taskState) assignment() Assignment {
	t := ts.task
	t.Transports = append([]source.Transport(nil), t.Transports...)
	return Assignment{Task: t, Proxy: ts.proxy, Repository: ts.repo, Transport: ts.transport,
		Attempt: ts.attempts + 1, Start: ts.start, gen: ts.gen}
}

// freeLocked gives back the slots of ts's current attempt.
func (s *Scheduler) freeLocked(ts *taskState) {
	if p := s.proxies[ts.proxy]; p != nil {
		p.used--
		s.dropIdleProxyLocked(p)
	}
	if r := s.repos[ts.repo]; r != nil {
		r.used--
	}
	ts.gen, ts.proxy, ts.repo, ts.transport = 0, "", "", ""
}

// endAttemptLocked records the current attempt of ts as ended with err and
// frees its slots.
func (s *Scheduler) endAttemptLocked(ts *taskState, err error) Record {
	ts.attempts++
	rec := Record{TaskID: ts.task.ID, JobID: ts.task.JobID, VM: ts.task.VM, Disk: ts.task.Disk,
		Attempt: ts.attempts, Proxy: ts.proxy, Repository: ts.repo, Transport: ts.transport,
		Start: ts.start, End: s.clock.Now(), Err: err}
	s.records[ts.task.JobID] = append(s.records[ts.task.JobID], rec)
	s.freeLocked(ts)
	return rec
}

// enqueueLocked puts ts (back) into the queue at its sequence position.
func (s *Scheduler) enqueueLocked(ts *taskState) {
	ts.state = stateQueued
	ts.queuedAt = s.clock.Now()
	s.queue.push(ts)
}

// finishLocked forgets a task that will not run again and returns the VM
// session's release (a no-op unless this was the VM's last task).
func (s *Scheduler) finishLocked(ts *taskState) func() {
	delete(s.tasks, ts.task.ID)
	vs := s.vms[ts.task.vm()]
	vs.refs--
	return s.releasableLocked(vs)
}

func (s *Scheduler) wakeLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
