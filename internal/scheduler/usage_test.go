package scheduler

import (
	"reflect"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

func TestUsage(t *testing.T) {
	s := New(newTickClock())
	must(t, s.AddProxy(Proxy{ID: "p", Slots: 4, Reach: anyReach(source.TransportNBD)}))
	must(t, s.AddRepository(Repository{ID: "r", Slots: 2}))
	must(t, s.Submit(task("t1", "v1", "esx", "r"), task("t2", "v2", "esx", "r")))
	a := mustNext(t, s)
	mustNext(t, s)
	want := []Usage{{Role: "proxy", ID: "p", Slots: 4, Busy: 2}, {Role: "repository", ID: "r", Slots: 2, Busy: 2}}
	if got := s.Usage(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Usage = %+v, want %+v", got, want)
	}
	mustDone(t, s, a, nil)
	want[0].Busy, want[1].Busy = 1, 1
	if got := s.Usage(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after Done: Usage = %+v, want %+v", got, want)
	}
}
