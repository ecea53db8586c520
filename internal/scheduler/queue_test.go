package scheduler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/source"
)

func TestFIFOWithPriority(t *testing.T) {
	s := New(newTickClock())
	must(t, s.AddProxy(Proxy{ID: "p", Slots: 1, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: 4}))
	must(t, s.Submit(task("first", "vm0", "esx", "r")))
	running := mustNext(t, s)

	for _, tk := range []Task{
		{ID: "low1", Priority: 0}, {ID: "high1", Priority: 5}, {ID: "low2", Priority: 0},
		{ID: "mid", Priority: 1}, {ID: "high2", Priority: 5}, {ID: "neg", Priority: -1},
	} {
		tk.JobID, tk.VM, tk.SourceID, tk.RepositoryID = "job", tk.ID, "esx", "r"
		must(t, s.Submit(tk))
	}
	var order []string
	for _, w := range s.Queued() {
		order = append(order, w.Task.ID)
		if w.Reason != ProxiesBusy {
			t.Errorf("%s waits for %v, want %v", w.Task.ID, w.Reason, ProxiesBusy)
		}
	}
	want := "high1 high2 mid low1 low2 neg"
	if got := strings.Join(order, " "); got != want {
		t.Fatalf("queue = %s, want %s", got, want)
	}
	order = order[:0]
	for a := running; ; {
		mustDone(t, s, a, nil)
		next, ok := tryNext(t, s)
		if !ok {
			break
		}
		order = append(order, next.Task.ID)
		a = next
	}
	if got := strings.Join(order, " "); got != want {
		t.Fatalf("run order = %s, want %s", got, want)
	}
}

func TestBlockedTaskDoesNotBlockOthers(t *testing.T) {
	s := New(newTickClock())
	must(t, s.AddProxy(Proxy{ID: "p", Slots: 2, Reach: map[string][]source.Transport{"esx1": {source.TransportNBD}}}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: 2}))
	must(t, s.Submit(Task{ID: "stuck", VM: "a", SourceID: "esx9", RepositoryID: "r", Priority: 9}))
	must(t, s.Submit(task("ok", "b", "esx1", "r")))
	if a := mustNext(t, s); a.Task.ID != "ok" {
		t.Fatalf("got %s", a.Task.ID)
	}
	q := s.Queued()
	if len(q) != 1 || q[0].Task.ID != "stuck" || q[0].Reason != Unreachable {
		t.Fatalf("Queued = %+v", q)
	}
	if !s.Cancel("stuck") || s.Cancel("stuck") || len(s.Queued()) != 0 {
		t.Fatal("Cancel of the queued task")
	}
}

func TestRepositorySlots(t *testing.T) {
	s := New(newTickClock())
	must(t, s.AddProxy(Proxy{ID: "p", Slots: 8, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "small", Slots: 1}))
	must(t, s.AddRepository(Repository{ID: "big", Slots: 8}))
	must(t, s.Submit(task("s1", "v1", "esx", "small"), task("s2", "v2", "esx", "small"), task("b1", "v3", "esx", "big")))
	a1, a2 := mustNext(t, s), mustNext(t, s)
	if a1.Task.ID != "s1" || a2.Task.ID != "b1" {
		t.Fatalf("got %s, %s; want s1, b1", a1.Task.ID, a2.Task.ID)
	}
	if q := s.Queued(); len(q) != 1 || q[0].Reason != RepositoryBusy {
		t.Fatalf("Queued = %+v", q)
	}
	mustDone(t, s, a1, nil)
	if a := mustNext(t, s); a.Task.ID != "s2" || a.Repository != "small" {
		t.Fatalf("got %+v", a)
	}
}

func TestSubmitValidation(t *testing.T) {
	s := New(newTickClock())
	must(t, s.Submit(task("t1", "vm", "esx", "r")))
	for name, batch := range map[string][]Task{
		"duplicate":        {task("t1", "vm", "esx", "r")},
		"duplicate within": {task("x", "vm", "esx", "r"), task("x", "vm", "esx", "r")},
		"no ID":            {task("", "vm", "esx", "r")},
		"no VM":            {task("y", "", "esx", "r")},
		"no source":        {task("y", "vm", "", "r")},
		"no repository":    {task("y", "vm", "esx", "")},
	} {
		if err := s.Submit(batch...); err == nil {
			t.Errorf("%s: Submit accepted %+v", name, batch)
		}
	}
	if n := len(s.Queued()); n != 1 {
		t.Fatalf("%d tasks queued after rejected batches, want 1", n)
	}
	if err := s.AddProxy(Proxy{}); err == nil {
		t.Error("AddProxy without ID")
	}
	if err := s.AddRepository(Repository{}); err == nil {
		t.Error("AddRepository without ID")
	}
}

func TestNextHonoursContext(t *testing.T) {
	s := New(newTickClock())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := s.Next(ctx); errc <- err }()
	time.Sleep(5 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next = %v", err)
	}
}

func TestDoneTwiceIsStale(t *testing.T) {
	s := New(newTickClock())
	must(t, s.AddProxy(Proxy{ID: "p", Slots: 1, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: 1}))
	must(t, s.Submit(task("t", "vm", "esx", "r")))
	a := mustNext(t, s)
	rec := mustDone(t, s, a, nil)
	if rec.Proxy != "p" || rec.Repository != "r" || rec.Transport != source.TransportNBD || !rec.End.After(rec.Start) || rec.Attempt != 1 {
		t.Fatalf("record %+v", rec)
	}
	if _, err := s.Done(a, nil); !errors.Is(err, ErrStale) {
		t.Fatalf("second Done = %v", err)
	}
	if _, err := s.Done(Assignment{}, nil); !errors.Is(err, ErrStale) {
		t.Fatalf("Done(zero) = %v", err)
	}
	if got := s.Records("job"); len(got) != 1 || got[0] != rec {
		t.Fatalf("Records = %+v", got)
	}
	s.ForgetJob("job")
	if got := s.Records(""); len(got) != 0 {
		t.Fatalf("Records after ForgetJob = %+v", got)
	}
}

func TestRemoveProxyDrains(t *testing.T) {
	s := New(newTickClock())
	must(t, s.AddProxy(Proxy{ID: "old", Slots: 1, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: 4}))
	must(t, s.Submit(task("t1", "v1", "esx", "r"), task("t2", "v2", "esx", "r")))
	a := mustNext(t, s)
	must(t, s.RemoveProxy("old"))
	if err := s.RemoveProxy("old"); !errors.Is(err, ErrUnknownProxy) {
		t.Fatalf("second RemoveProxy = %v", err)
	}
	if _, ok := tryNext(t, s); ok {
		t.Fatal("removed proxy got a task")
	}
	mustDone(t, s, a, nil)
	if _, ok := s.proxies["old"]; ok {
		t.Fatal("idle removed proxy not forgotten")
	}
	must(t, s.AddProxy(Proxy{ID: "new", Slots: 1, Reach: anyReach(source.TransportNBD)}))
	if a := mustNext(t, s); a.Proxy != "new" || a.Task.ID != "t2" {
		t.Fatalf("got %+v", a)
	}
}
