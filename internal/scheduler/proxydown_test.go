package scheduler

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

func TestProxyDownRequeues(t *testing.T) {
	h := newHookLog()
	s := New(newTickClock())
	s.SetVMHooks(h.hooks())
	must(t, s.AddProxy(Proxy{ID: "p1", Slots: 2, Reach: anyReach(source.TransportHotAdd)}))
	must(t, s.AddProxy(Proxy{ID: "p2", Slots: 1, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: 4}))
	must(t, s.Submit(task("d1", "vm", "esx", "r"), task("d2", "vm", "esx", "r"),
		task("d3", "vm", "esx", "r"), task("d4", "vm", "esx", "r")))
	a1, a2, a3 := mustNext(t, s), mustNext(t, s), mustNext(t, s)
	if a1.Proxy != "p1" || a2.Proxy != "p1" || a3.Proxy != "p2" {
		t.Fatalf("placement %s %s %s", a1.Proxy, a2.Proxy, a3.Proxy)
	}

	ids, err := s.ProxyDown("p1", true)
	must(t, err)
	if !slices.Equal(ids, []string{"d1", "d2"}) {
		t.Fatalf("ProxyDown = %v", ids)
	}
	if _, err := s.Done(a1, nil); !errors.Is(err, ErrStale) {
		t.Fatalf("Done on a lost attempt = %v", err)
	}
	// The lost tasks are first in the queue again, ahead of d4.
	q := s.Queued()
	if len(q) != 3 || q[0].Task.ID != "d1" || q[1].Task.ID != "d2" || q[2].Task.ID != "d4" {
		t.Fatalf("Queued = %+v", q)
	}
	mustDone(t, s, a3, nil)
	b1 := mustNext(t, s)
	if b1.Task.ID != "d1" || b1.Proxy != "p2" || b1.Transport != source.TransportNBD || b1.Attempt != 2 {
		t.Fatalf("requeued d1 = %+v", b1)
	}
	mustDone(t, s, b1, nil)
	must(t, s.ProxyUp("p1"))
	b2, b4 := mustNext(t, s), mustNext(t, s)
	if b2.Task.ID != "d2" || b2.Proxy != "p1" || b4.Task.ID != "d4" {
		t.Fatalf("after ProxyUp: %+v %+v", b2, b4)
	}
	mustDone(t, s, b2, nil)
	mustDone(t, s, b4, nil)
	if p, r := h.counts("vm"); p != 1 || r != 1 {
		t.Fatalf("prepared %d released %d, want 1 1", p, r)
	}

	var lost int
	for _, rec := range s.Records("job") {
		if errors.Is(rec.Err, ErrProxyDown) {
			lost++
			if rec.Proxy != "p1" || rec.Attempt != 1 {
				t.Errorf("lost record %+v", rec)
			}
		}
	}
	if lost != 2 || len(s.Records("job")) != 6 {
		t.Fatalf("records: %d lost of %d", lost, len(s.Records("job")))
	}
}

func TestProxyDownWithoutRequeue(t *testing.T) {
	h := newHookLog()
	s := New(newTickClock())
	s.SetVMHooks(h.hooks())
	must(t, s.AddProxy(Proxy{ID: "p1", Slots: 2, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: 4}))
	must(t, s.Submit(task("d1", "vm", "esx", "r"), task("d2", "vm", "esx", "r")))
	a1, _ := mustNext(t, s), mustNext(t, s)
	ids, err := s.ProxyDown("p1", false)
	must(t, err)
	if len(ids) != 2 || len(s.Queued()) != 0 {
		t.Fatalf("ProxyDown = %v, queued %v", ids, s.Queued())
	}
	if p, r := h.counts("vm"); p != 1 || r != 1 {
		t.Fatalf("prepared %d released %d, want 1 1", p, r)
	}
	if _, err := s.Done(a1, nil); !errors.Is(err, ErrStale) {
		t.Fatalf("Done = %v", err)
	}
	if _, err := s.ProxyDown("nope", true); !errors.Is(err, ErrUnknownProxy) {
		t.Fatalf("ProxyDown(unknown) = %v", err)
	}
	// Slots were given back: the proxy takes new work when it is back.
	must(t, s.ProxyUp("p1"))
	must(t, s.Submit(task("d3", "vm2", "esx", "r"), task("d4", "vm3", "esx", "r")))
	mustNext(t, s)
	mustNext(t, s)
}

func TestProxyDownDuringPrepare(t *testing.T) {
	h := newHookLog()
	s := New(newTickClock())
	must(t, s.AddProxy(Proxy{ID: "p1", Slots: 1, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddProxy(Proxy{ID: "p2", Slots: 1, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: 4}))
	hooks := h.hooks()
	inPrepare, proceed := make(chan struct{}), make(chan struct{})
	s.SetVMHooks(VMHooks{Release: hooks.Release, Prepare: func(ctx context.Context, vm VMKey) error {
		close(inPrepare)
		<-proceed
		return hooks.Prepare(ctx, vm)
	}})
	must(t, s.Submit(task("d1", "vm", "esx", "r")))
	got := make(chan Assignment)
	go func() { a, _ := s.Next(t.Context()); got <- a }()
	<-inPrepare
	ids, err := s.ProxyDown("p1", true)
	must(t, err)
	if !slices.Equal(ids, []string{"d1"}) {
		t.Fatalf("ProxyDown = %v", ids)
	}
	close(proceed)
	// The Next that prepared notices its attempt was lost and takes the
	// requeued task on p2, without preparing again.
	a := <-got
	if a.Task.ID != "d1" || a.Proxy != "p2" || a.Attempt != 2 {
		t.Fatalf("got %+v", a)
	}
	mustDone(t, s, a, nil)
	if p, r := h.counts("vm"); p != 1 || r != 1 {
		t.Fatalf("prepared %d released %d, want 1 1", p, r)
	}
}
