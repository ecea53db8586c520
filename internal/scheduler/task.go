package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// Task is the backup (or restore) of one VM disk.
type Task struct {
	ID           string // unique among the scheduler's unfinished tasks
	JobID        string
	VM           string // tasks with the same JobID and VM share one snapshot
	Disk         string
	SourceID     string // host, datastore or cluster the disk is read from
	RepositoryID string
	// Transports lists the acceptable transports in preference order;
	// empty means DefaultTransports().
	Transports []source.Transport
	// Priority orders the queue: higher first, FIFO within a priority.
	Priority int
}

func (t *Task) transports() []source.Transport {
	if len(t.Transports) == 0 {
		return DefaultTransports()
	}
	return t.Transports
}

func (t *Task) vm() VMKey { return VMKey{JobID: t.JobID, VM: t.VM} }

func (t *Task) validate() error {
	switch {
	case t.ID == "":
		return errors.New("scheduler: task without ID")
	case t.VM == "":
		return fmt.Errorf("scheduler: task %q: no VM", t.ID)
	case t.SourceID == "":
		return fmt.Errorf("scheduler: task %q: no source", t.ID)
	case t.RepositoryID == "":
		return fmt.Errorf("scheduler: task %q: no repository", t.ID)
	}
	return nil
}

// Assignment is one attempt at running a task, handed out by Next.
type Assignment struct {
	Task       Task
	Proxy      string
	Repository string
	Transport  source.Transport
	Attempt    int       // 1, then 2 after the task was requeued once, …
	Start      time.Time // when the slots were taken
	// PrepareErr is the VM's Prepare hook error. When it is set the
	// snapshot does not exist: do not read the disk, end the attempt
	// with Done(a, a.PrepareErr).
	PrepareErr error

	gen uint64 // identifies the attempt; Done checks it
}

// Record is an ended attempt.
type Record struct {
	TaskID, JobID, VM, Disk string
	Attempt                 int
	Proxy, Repository       string
	Transport               source.Transport
	Start, End              time.Time
	Err                     error // nil: success
}

type taskState struct {
	task     Task
	seq      uint64 // submission order
	state    int
	queuedAt time.Time
	attempts int // ended attempts

	// current attempt (stateStarting, stateRunning)
	gen       uint64
	proxy     string
	repo      string
	transport source.Transport
	start     time.Time
}

const (
	stateQueued   = iota
	stateStarting // slots taken, VM snapshot being prepared
	stateRunning  // handed to a worker
)

// Submit queues tasks, all or none. Submit all disks of a VM together (see
// the package documentation on VM sessions).
func (s *Scheduler) Submit(tasks ...Task) error {
	seen := make(map[string]bool, len(tasks))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range tasks {
		t := &tasks[i]
		if err := t.validate(); err != nil {
			return err
		}
		if seen[t.ID] || s.tasks[t.ID] != nil {
			return fmt.Errorf("scheduler: task %q already submitted", t.ID)
		}
		seen[t.ID] = true
	}
	now := s.clock.Now()
	for _, t := range tasks {
		t.Transports = slices.Clone(t.Transports)
		s.seq++
		ts := &taskState{task: t, seq: s.seq}
		s.tasks[t.ID] = ts
		s.session(t.vm()).refs++
		ts.queuedAt = now
		s.queue.push(ts)
	}
	s.wakeLocked()
	return nil
}

// Done ends an attempt returned by Next, gives back its slots and records
// it; err nil means success. It returns ErrStale for an attempt that was
// already ended (twice Done, or lost by ProxyDown). Ending a VM's last task
// runs the VM's Release hook before Done returns.
func (s *Scheduler) Done(a Assignment, err error) (Record, error) {
	s.mu.Lock()
	ts := s.tasks[a.Task.ID]
	if ts == nil || ts.state != stateRunning || ts.gen != a.gen {
		s.mu.Unlock()
		return Record{}, fmt.Errorf("%w: task %q attempt %d", ErrStale, a.Task.ID, a.Attempt)
	}
	rec := s.endAttemptLocked(ts, err)
	release := s.finishLocked(ts)
	s.wakeLocked()
	s.mu.Unlock()
	release()
	return rec, nil
}

// Cancel removes a queued task (it never ran, or waits for a retry) and
// reports whether it was queued. Running attempts are not touched: cancel
// the worker, which then calls Done.
func (s *Scheduler) Cancel(taskID string) bool {
	s.mu.Lock()
	ts := s.tasks[taskID]
	if ts == nil || ts.state != stateQueued {
		s.mu.Unlock()
		return false
	}
	s.queue.remove(ts)
	release := s.finishLocked(ts)
	s.mu.Unlock()
	release()
	return true
}

// Waiting is a queued task and why it waits.
type Waiting struct {
	Task   Task
	Since  time.Time // submitted or requeued
	Reason Reason
	Detail string
}

// Queued returns the queued tasks in queue order, each with the reason it
// cannot run now.
func (s *Scheduler) Queued() []Waiting {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Waiting, 0, s.queue.len())
	for _, ts := range s.queue.items {
		_, reason, detail := s.choose(&ts.task)
		t := ts.task
		t.Transports = slices.Clone(t.Transports)
		out = append(out, Waiting{Task: t, Since: ts.queuedAt, Reason: reason, Detail: detail})
	}
	return out
}

// Records returns the ended attempts of a job in the order they ended; an
// empty jobID returns those of all jobs, by job.
func (s *Scheduler) Records(jobID string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if jobID != "" {
		return slices.Clone(s.records[jobID])
	}
	var out []Record
	for _, id := range sortedKeys(s.records) {
		out = append(out, s.records[id]...)
	}
	return out
}

// ForgetJob drops the records of a job.
func (s *Scheduler) ForgetJob(jobID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, jobID)
}
