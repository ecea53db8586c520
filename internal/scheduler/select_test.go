package scheduler

import (
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

type proxySetup struct {
	id      string
	slots   int
	used    int
	reach   map[string][]source.Transport
	offline bool
	removed bool
}

var allTransports = []source.Transport{source.TransportDirect, source.TransportHotAdd, source.TransportNBD}

var selectionCases = []struct {
	name      string
	proxies   []proxySetup
	repoSlots int // 0: 4 slots; -1: no repository registered
	repoUsed  int
	task      Task
	proxy     string
	transport source.Transport
	reason    Reason
	detail    string
}{
	{name: "least loaded",
		proxies: []proxySetup{{id: "a", slots: 4, used: 1, reach: anyReach(allTransports...)}, {id: "b", slots: 4, reach: anyReach(allTransports...)}},
		task:    task("t", "vm", "esx1", "r"), proxy: "b", transport: source.TransportDirect},
	{name: "load is a ratio of slots",
		proxies: []proxySetup{{id: "a", slots: 8, used: 2, reach: anyReach(allTransports...)}, {id: "b", slots: 2, used: 1, reach: anyReach(allTransports...)}},
		task:    task("t", "vm", "esx1", "r"), proxy: "a", transport: source.TransportDirect},
	{name: "tie broken by ID",
		proxies: []proxySetup{{id: "b", slots: 4, reach: anyReach(allTransports...)}, {id: "a", slots: 4, reach: anyReach(allTransports...)}, {id: "c", slots: 4, reach: anyReach(allTransports...)}},
		task:    task("t", "vm", "esx1", "r"), proxy: "a", transport: source.TransportDirect},
	{name: "tie broken by more slots first",
		proxies: []proxySetup{{id: "a", slots: 2, reach: anyReach(allTransports...)}, {id: "b", slots: 4, reach: anyReach(allTransports...)}},
		task:    task("t", "vm", "esx1", "r"), proxy: "b", transport: source.TransportDirect},
	{name: "preferred transport beats lower load",
		proxies: []proxySetup{{id: "a", slots: 4, reach: anyReach(source.TransportNBD)}, {id: "b", slots: 4, used: 3, reach: anyReach(source.TransportHotAdd)}},
		task:    task("t", "vm", "esx1", "r"), proxy: "b", transport: source.TransportHotAdd},
	{name: "task order of transports decides",
		proxies: []proxySetup{{id: "a", slots: 4, reach: anyReach(source.TransportDirect)}, {id: "b", slots: 4, reach: anyReach(source.TransportNBD)}},
		task:    task("t", "vm", "esx1", "r", source.TransportNBD, source.TransportDirect), proxy: "b", transport: source.TransportNBD},
	{name: "busy preferred transport falls back",
		proxies: []proxySetup{{id: "a", slots: 2, used: 2, reach: anyReach(source.TransportDirect)}, {id: "b", slots: 1, reach: anyReach(source.TransportNBD)}},
		task:    task("t", "vm", "esx1", "r"), proxy: "b", transport: source.TransportNBD},
	{name: "source-specific reach",
		proxies: []proxySetup{{id: "a", slots: 4, reach: map[string][]source.Transport{"esx1": {source.TransportHotAdd}}}, {id: "b", slots: 4, used: 3, reach: anyReach(source.TransportNBD)}},
		task:    task("t", "vm", "esx2", "r"), proxy: "b", transport: source.TransportNBD},
	{name: "named source overrides the wildcard",
		proxies: []proxySetup{{id: "a", slots: 4, reach: map[string][]source.Transport{"esx1": {source.TransportNBD}, AnySource: {source.TransportDirect}}}},
		task:    task("t", "vm", "esx1", "r"), proxy: "a", transport: source.TransportNBD},
	{name: "offline and removed proxies are skipped",
		proxies: []proxySetup{{id: "a", slots: 4, reach: anyReach(allTransports...), offline: true}, {id: "b", slots: 4, reach: anyReach(allTransports...), removed: true}, {id: "c", slots: 1, reach: anyReach(source.TransportNBD)}},
		task:    task("t", "vm", "esx1", "r"), proxy: "c", transport: source.TransportNBD},
	{name: "unreachable source stays queued",
		proxies: []proxySetup{{id: "a", slots: 4, reach: map[string][]source.Transport{"esx1": allTransports}}},
		task:    task("t", "vm", "esx9", "r"), reason: Unreachable, detail: `no proxy can reach vm (none online offers source "esx9"`},
	{name: "no acceptable transport",
		proxies: []proxySetup{{id: "a", slots: 4, reach: anyReach(source.TransportNBD)}},
		task:    task("t", "vm", "esx1", "r", source.TransportDirect, source.TransportHotAdd), reason: Unreachable, detail: "direct, hotadd"},
	{name: "only offline proxies reach",
		proxies: []proxySetup{{id: "a", slots: 4, reach: anyReach(allTransports...), offline: true}},
		task:    task("t", "vm", "esx1", "r"), reason: Unreachable},
	{name: "reaching proxies busy",
		proxies: []proxySetup{{id: "a", slots: 2, used: 2, reach: anyReach(allTransports...)}, {id: "b", slots: 4, reach: map[string][]source.Transport{"other": allTransports}}},
		task:    task("t", "vm", "esx1", "r"), reason: ProxiesBusy, detail: "the proxies that reach vm are busy"},
	{name: "repository busy",
		proxies:   []proxySetup{{id: "a", slots: 4, reach: anyReach(allTransports...)}},
		repoSlots: 2, repoUsed: 2,
		task: task("t", "vm", "esx1", "r"), reason: RepositoryBusy, detail: "repository r is busy (2/2 slots)"},
	{name: "repository unknown",
		proxies:   []proxySetup{{id: "a", slots: 4, reach: anyReach(allTransports...)}},
		repoSlots: -1,
		task:      task("t", "vm", "esx1", "r"), reason: RepositoryUnknown},
}

func TestSelection(t *testing.T) {
	for _, tc := range selectionCases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(newTickClock())
			for _, p := range tc.proxies {
				must(t, s.AddProxy(Proxy{ID: p.id, Slots: p.slots, Reach: p.reach}))
				ps := s.proxies[p.id]
				ps.used, ps.offline, ps.removed = p.used, p.offline, p.removed
			}
			if tc.repoSlots >= 0 {
				slots := tc.repoSlots
				if slots == 0 {
					slots = 4
				}
				must(t, s.AddRepository(Repository{ID: "r", Slots: slots}))
				s.repos["r"].used = tc.repoUsed
			}
			must(t, s.Submit(tc.task))
			q := s.Queued()
			if len(q) != 1 || q[0].Reason != tc.reason || !strings.Contains(q[0].Detail, tc.detail) {
				t.Fatalf("Queued = %+v, want reason %v with %q", q, tc.reason, tc.detail)
			}
			a, ok := tryNext(t, s)
			if tc.reason != Runnable {
				if ok {
					t.Fatalf("Next handed out %+v, want it queued (%v)", a, tc.reason)
				}
				return
			}
			if !ok || a.Proxy != tc.proxy || a.Transport != tc.transport || a.Repository != "r" {
				t.Fatalf("Next = %+v (ok %v), want proxy %s transport %s", a, ok, tc.proxy, tc.transport)
			}
		})
	}
}

func TestSelectionDeterministic(t *testing.T) {
	// Map iteration order must not leak into the choice.
	for range 50 {
		s := New(newTickClock())
		for _, id := range []string{"p3", "p1", "p2", "p0"} {
			must(t, s.AddProxy(Proxy{ID: id, Slots: 2, Reach: anyReach(source.TransportNBD)}))
		}
		must(t, s.AddRepository(Repository{ID: "r", Slots: 8}))
		var got []string
		for i := range 8 {
			must(t, s.Submit(task(string(rune('a'+i)), "vm", "esx", "r")))
			got = append(got, mustNext(t, s).Proxy)
		}
		want := "p0 p1 p2 p3 p0 p1 p2 p3"
		if strings.Join(got, " ") != want {
			t.Fatalf("proxies = %v, want %s", got, want)
		}
	}
}

func TestUnreachableWaitsForProxy(t *testing.T) {
	s := New(newTickClock())
	must(t, s.AddRepository(Repository{ID: "r", Slots: 1}))
	must(t, s.Submit(task("t1", "vm", "esx1", "r")))
	if _, ok := tryNext(t, s); ok {
		t.Fatal("ran without a proxy")
	}
	done := make(chan Assignment)
	go func() { a, _ := s.Next(t.Context()); done <- a }()
	must(t, s.AddProxy(Proxy{ID: "late", Slots: 1, Reach: anyReach(source.TransportNBD)}))
	if a := <-done; a.Proxy != "late" || a.Task.ID != "t1" {
		t.Fatalf("got %+v", a)
	}
}
