package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// hookLog counts Prepare and Release calls per VM.
type hookLog struct {
	mu       sync.Mutex
	prepared map[VMKey]int
	released map[VMKey]int
	relErr   map[VMKey]error
	fail     error         // Prepare's result
	delay    time.Duration // Prepare's duration
}

func newHookLog() *hookLog {
	return &hookLog{prepared: map[VMKey]int{}, released: map[VMKey]int{}, relErr: map[VMKey]error{}}
}

func (h *hookLog) hooks() VMHooks {
	return VMHooks{
		Prepare: func(ctx context.Context, vm VMKey) error {
			time.Sleep(h.delay)
			h.mu.Lock()
			defer h.mu.Unlock()
			h.prepared[vm]++
			return h.fail
		},
		Release: func(vm VMKey, err error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.released[vm]++
			h.relErr[vm] = err
		},
	}
}

func (h *hookLog) counts(vm string) (prepared, released int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := VMKey{JobID: "job", VM: vm}
	return h.prepared[k], h.released[k]
}

func sessionScheduler(t *testing.T, h *hookLog, slots int) *Scheduler {
	s := New(newTickClock())
	s.SetVMHooks(h.hooks())
	must(t, s.AddProxy(Proxy{ID: "p", Slots: slots, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: slots}))
	return s
}

func TestVMSnapshotOncePerVM(t *testing.T) {
	h := newHookLog()
	h.delay = 20 * time.Millisecond
	s := sessionScheduler(t, h, 2)
	// Four disks, two slots: disk 1 and 2 end before disk 3 and 4 start,
	// yet the snapshot stays until the last one.
	must(t, s.Submit(task("d1", "vm", "esx", "r"), task("d2", "vm", "esx", "r"),
		task("d3", "vm", "esx", "r"), task("d4", "vm", "esx", "r")))

	// Two concurrent Next calls: one prepares, the other waits for it.
	got := make(chan Assignment, 2)
	for range 2 {
		go func() { a, _ := s.Next(t.Context()); got <- a }()
	}
	a1, a2 := <-got, <-got
	if p, r := h.counts("vm"); p != 1 || r != 0 {
		t.Fatalf("after start: prepared %d released %d, want 1 0", p, r)
	}
	for _, id := range []string{"d3", "d4"} {
		mustDone(t, s, a1, nil)
		a1, a2 = a2, mustNext(t, s)
		if a2.Task.ID != id {
			t.Fatalf("got %s, want %s", a2.Task.ID, id)
		}
	}
	mustDone(t, s, a1, errors.New("disk 3 failed"))
	if p, r := h.counts("vm"); p != 1 || r != 0 {
		t.Fatalf("before last disk ended: prepared %d released %d, want 1 0", p, r)
	}
	mustDone(t, s, a2, nil)
	if p, r := h.counts("vm"); p != 1 || r != 1 {
		t.Fatalf("after last disk: prepared %d released %d, want 1 1", p, r)
	}
	// A new batch for the same VM is a new session.
	must(t, s.Submit(task("d5", "vm", "esx", "r")))
	mustDone(t, s, mustNext(t, s), nil)
	if p, r := h.counts("vm"); p != 2 || r != 2 {
		t.Fatalf("second session: prepared %d released %d, want 2 2", p, r)
	}
}

func TestVMPrepareFailure(t *testing.T) {
	h := newHookLog()
	h.fail = errors.New("snapshot quota exceeded")
	s := sessionScheduler(t, h, 4)
	must(t, s.Submit(task("d1", "vm", "esx", "r"), task("d2", "vm", "esx", "r")))
	for range 2 {
		a := mustNext(t, s)
		if !errors.Is(a.PrepareErr, h.fail) {
			t.Fatalf("%s: PrepareErr = %v", a.Task.ID, a.PrepareErr)
		}
		mustDone(t, s, a, a.PrepareErr)
	}
	if p, r := h.counts("vm"); p != 1 || r != 1 {
		t.Fatalf("prepared %d released %d, want 1 1", p, r)
	}
	if err := h.relErr[VMKey{JobID: "job", VM: "vm"}]; !errors.Is(err, h.fail) {
		t.Fatalf("Release got %v", err)
	}
}

func TestVMCancelledBeforeStart(t *testing.T) {
	h := newHookLog()
	s := sessionScheduler(t, h, 1)
	must(t, s.Submit(task("d1", "vm", "esx", "r"), task("d2", "vm", "esx", "r")))
	a := mustNext(t, s)
	if !s.Cancel("d2") {
		t.Fatal("Cancel d2")
	}
	mustDone(t, s, a, nil)
	if p, r := h.counts("vm"); p != 1 || r != 1 {
		t.Fatalf("prepared %d released %d, want 1 1", p, r)
	}
	// A VM whose tasks are all cancelled before starting is never prepared.
	must(t, s.Submit(task("x1", "other", "esx", "r")))
	s.Cancel("x1")
	if p, r := h.counts("other"); p != 0 || r != 0 {
		t.Fatalf("other: prepared %d released %d, want 0 0", p, r)
	}
	if len(s.vms) != 0 {
		t.Fatalf("sessions left: %v", s.vms)
	}
}

func TestNextCancelledWhileWaitingForPrepare(t *testing.T) {
	h := newHookLog()
	h.delay = 50 * time.Millisecond
	s := sessionScheduler(t, h, 2)
	must(t, s.Submit(task("d1", "vm", "esx", "r"), task("d2", "vm", "esx", "r")))
	first := make(chan Assignment)
	go func() { a, _ := s.Next(t.Context()); first <- a }()
	time.Sleep(10 * time.Millisecond) // d1 is preparing
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %v", err)
	}
	if q := s.Queued(); len(q) != 1 || q[0].Task.ID != "d2" {
		t.Fatalf("d2 not requeued: %+v", q)
	}
	a1 := <-first
	a2 := mustNext(t, s)
	if a1.Task.ID != "d1" || a2.Task.ID != "d2" || a2.Attempt != 1 {
		t.Fatalf("got %+v, %+v", a1, a2)
	}
	mustDone(t, s, a1, nil)
	mustDone(t, s, a2, nil)
	if p, r := h.counts("vm"); p != 1 || r != 1 {
		t.Fatalf("prepared %d released %d, want 1 1", p, r)
	}
}

func TestHooksMayCallBack(t *testing.T) {
	s := New(newTickClock())
	s.SetVMHooks(VMHooks{
		Prepare: func(ctx context.Context, vm VMKey) error { s.Queued(); return nil },
		Release: func(vm VMKey, err error) { s.Records(vm.JobID) },
	})
	must(t, s.AddProxy(Proxy{ID: "p", Slots: 1, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: 1}))
	must(t, s.Submit(task("d1", "vm", "esx", "r")))
	mustDone(t, s, mustNext(t, s), nil)
}

func TestPrepareHookPanics(t *testing.T) {
	s := New(newTickClock())
	s.SetVMHooks(VMHooks{Prepare: func(ctx context.Context, vm VMKey) error { panic("boom") }})
	must(t, s.AddProxy(Proxy{ID: "p", Slots: 2, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: 2}))
	must(t, s.Submit(task("d1", "vm", "esx", "r"), task("d2", "vm", "esx", "r")))
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v", r)
			}
		}()
		_, _ = s.Next(t.Context())
		t.Fatal("Next did not panic")
	}()
	// The session is not stuck: the other disk learns what happened.
	a := mustNext(t, s)
	if a.Task.ID != "d2" || a.PrepareErr == nil || !strings.Contains(a.PrepareErr.Error(), "boom") {
		t.Fatalf("got %+v", a)
	}
}
