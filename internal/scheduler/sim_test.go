package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// simVM is the test's view of one VM of the simulation.
type simVM struct {
	disks, done, running, prepared, released int
	releasedAt                               time.Time
}

type simulation struct {
	t     *testing.T
	s     *Scheduler
	clock *tickClock
	churn bool

	mu     sync.Mutex
	vms    map[string]*simVM
	errs   []string
	active int // VMs not yet released
}

func (m *simulation) fail(format string, args ...any) {
	m.errs = append(m.errs, fmt.Sprintf(format, args...))
}

func (m *simulation) hooks() VMHooks {
	return VMHooks{
		Prepare: func(ctx context.Context, k VMKey) error {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			m.mu.Lock()
			defer m.mu.Unlock()
			vm := m.vms[k.VM]
			if vm.prepared++; vm.running > 0 || vm.released > 0 {
				m.fail("%s prepared while running %d, released %d", k.VM, vm.running, vm.released)
			}
			return nil
		},
		Release: func(k VMKey, err error) {
			at := m.clock.Now()
			m.mu.Lock()
			defer m.mu.Unlock()
			vm := m.vms[k.VM]
			vm.released++
			vm.releasedAt = at
			m.active--
			// Release runs inside the last Done, so vm.done is one short
			// here; verify compares stamps with the records instead.
			if !m.churn && vm.running > 0 {
				m.fail("%s released with %d disks running", k.VM, vm.running)
			}
		},
	}
}

// checkLimits looks at the scheduler's own counters.
func (m *simulation) checkLimits() {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	for _, p := range m.s.proxies {
		if p.used > p.cfg.Slots || p.used < 0 {
			m.fail("proxy %s uses %d of %d slots", p.cfg.ID, p.used, p.cfg.Slots)
		}
	}
	for _, r := range m.s.repos {
		if r.used > r.cfg.Slots || r.used < 0 {
			m.fail("repository %s uses %d of %d slots", r.cfg.ID, r.used, r.cfg.Slots)
		}
	}
}

func (m *simulation) worker(ctx context.Context) {
	for {
		a, err := m.s.Next(ctx)
		if err != nil {
			return
		}
		m.checkLimits()
		m.mu.Lock()
		vm := m.vms[a.Task.VM]
		// With churn, a proxy can go down between Next returning and
		// this check: the task reruns elsewhere and its VM may be
		// released already. That attempt is stale; Done must say so.
		late := vm.released != 0
		if vm.prepared != 1 || (late && !m.churn) || a.PrepareErr != nil {
			m.fail("%s handed out with prepared %d released %d (%v)", a.Task.ID, vm.prepared, vm.released, a.PrepareErr)
		}
		vm.running++
		m.mu.Unlock()

		time.Sleep(time.Duration(rand.IntN(400)) * time.Microsecond)
		var taskErr error
		if rand.IntN(10) == 0 {
			taskErr = errors.New("read error")
		}
		m.mu.Lock()
		vm.running--
		m.mu.Unlock()
		_, err = m.s.Done(a, taskErr)
		m.mu.Lock()
		switch {
		case err == nil && late:
			m.fail("%s ended after its VM was released", a.Task.ID)
		case err == nil:
			vm.done++
		case !m.churn || !errors.Is(err, ErrStale):
			m.fail("Done(%s): %v", a.Task.ID, err)
		}
		m.mu.Unlock()
	}
}

func (m *simulation) submitVMs(first, n int) {
	for i := first; i < first+n; i++ {
		name := fmt.Sprintf("vm%02d", i)
		disks := 1 + rand.IntN(4)
		src := fmt.Sprintf("esx%d", rand.IntN(4))
		repo := fmt.Sprintf("r%d", rand.IntN(2))
		prio := rand.IntN(3)
		var tasks []Task
		for d := range disks {
			tasks = append(tasks, Task{ID: fmt.Sprintf("%s-d%d", name, d), JobID: "job", VM: name,
				Disk: fmt.Sprint(d), SourceID: src, RepositoryID: repo, Priority: prio})
		}
		m.mu.Lock()
		m.vms[name] = &simVM{disks: disks}
		m.mu.Unlock()
		if err := m.s.Submit(tasks...); err != nil {
			m.mu.Lock()
			m.fail("Submit: %v", err)
			m.mu.Unlock()
		}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
	}
}

// churnProxies takes random proxies down and up until ctx ends, then
// brings all back.
func (m *simulation) churnProxies(ctx context.Context, ids []string) {
	defer func() {
		for _, id := range ids {
			_ = m.s.ProxyUp(id)
		}
	}()
	for ctx.Err() == nil {
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Microsecond)
		id := ids[rand.IntN(len(ids))]
		if _, err := m.s.ProxyDown(id, true); err != nil {
			panic(err)
		}
		time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
		if err := m.s.ProxyUp(id); err != nil {
			panic(err)
		}
	}
}

func runSimulation(t *testing.T, churn bool) {
	const numVMs, workers = 200, 8
	goroutines := runtime.NumGoroutine()
	clock := newTickClock()
	m := &simulation{t: t, s: New(clock), clock: clock, churn: churn, vms: map[string]*simVM{}, active: numVMs}
	m.s.SetVMHooks(m.hooks())
	proxies := []Proxy{
		{ID: "p0", Slots: 2, Reach: map[string][]source.Transport{"esx0": {source.TransportDirect}, "esx1": {source.TransportDirect}}},
		{ID: "p1", Slots: 3, Reach: anyReach(source.TransportHotAdd)},
		{ID: "p2", Slots: 1, Reach: anyReach(source.TransportNBD)},
		{ID: "p3", Slots: 2, Reach: map[string][]source.Transport{"esx2": {source.TransportDirect, source.TransportHotAdd}, AnySource: {source.TransportNBD}}},
	}
	limits := map[string]int{"r0": 2, "r1": 3}
	for _, p := range proxies {
		must(t, m.s.AddProxy(p))
		limits[p.ID] = p.Slots
	}
	must(t, m.s.AddRepository(Repository{ID: "r0", Slots: 2}))
	must(t, m.s.AddRepository(Repository{ID: "r1", Slots: 3}))

	ctx, cancel := context.WithCancel(context.Background())
	churnCtx, stopChurn := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { m.worker(ctx) })
	}
	wg.Go(func() { m.submitVMs(0, numVMs/2) })
	wg.Go(func() { m.submitVMs(numVMs/2, numVMs/2) })
	if churn {
		wg.Go(func() { m.churnProxies(churnCtx, []string{"p0", "p1", "p2", "p3"}) })
		time.AfterFunc(300*time.Millisecond, stopChurn)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		m.mu.Lock()
		active := m.active
		m.mu.Unlock()
		if active == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	stopChurn()
	cancel()
	wg.Wait()
	for _, e := range m.errs {
		t.Error(e)
	}
	m.verify(limits)
	checkNoGoroutineLeak(t, goroutines)
}

// verify checks the end state and replays the records.
func (m *simulation) verify(limits map[string]int) {
	t := m.t
	recs := m.s.Records("job")
	final := map[string]int{}
	lastEnd := map[string]time.Time{}
	for _, r := range recs {
		if !r.End.After(r.Start) {
			t.Errorf("record %+v ends before it starts", r)
		}
		if !errors.Is(r.Err, ErrProxyDown) {
			final[r.TaskID]++
		} else if !m.churn {
			t.Errorf("lost attempt without churn: %+v", r)
		}
		if r.End.After(lastEnd[r.VM]) {
			lastEnd[r.VM] = r.End
		}
	}
	tasks := 0
	for name, vm := range m.vms {
		tasks += vm.disks
		if vm.prepared != 1 || vm.released != 1 || vm.done != vm.disks {
			t.Errorf("%s: prepared %d released %d done %d/%d", name, vm.prepared, vm.released, vm.done, vm.disks)
		}
		if !vm.releasedAt.After(lastEnd[name]) {
			t.Errorf("%s released at %v before its last disk ended at %v", name, vm.releasedAt, lastEnd[name])
		}
	}
	for id, n := range final {
		if n != 1 {
			t.Errorf("task %s ended %d times", id, n)
		}
	}
	if len(final) != tasks {
		t.Errorf("%d tasks ended, %d submitted", len(final), tasks)
	}
	checkSlotTimeline(t, recs, func(r Record) string { return r.Proxy }, limits)
	checkSlotTimeline(t, recs, func(r Record) string { return r.Repository }, limits)
	if len(m.s.tasks) != 0 || len(m.s.vms) != 0 || m.s.queue.len() != 0 {
		t.Errorf("left over: %d tasks, %d sessions, %d queued", len(m.s.tasks), len(m.s.vms), m.s.queue.len())
	}
	t.Logf("%d VMs, %d tasks, %d attempts", len(m.vms), tasks, len(recs))
}

// checkSlotTimeline replays start and end stamps per resource and checks
// that the number of overlapping attempts never exceeds the limit.
func checkSlotTimeline(t *testing.T, recs []Record, key func(Record) string, limits map[string]int) {
	t.Helper()
	type event struct {
		at    time.Time
		delta int
		res   string
	}
	var evs []event
	for _, r := range recs {
		evs = append(evs, event{r.Start, +1, key(r)}, event{r.End, -1, key(r)})
	}
	sort.Slice(evs, func(i, j int) bool {
		if !evs[i].at.Equal(evs[j].at) {
			return evs[i].at.Before(evs[j].at)
		}
		return evs[i].delta < evs[j].delta
	})
	inUse, peak := map[string]int{}, map[string]int{}
	for _, e := range evs {
		inUse[e.res] += e.delta
		peak[e.res] = max(peak[e.res], inUse[e.res])
		if inUse[e.res] > limits[e.res] {
			t.Fatalf("%s: %d attempts at %v, limit %d", e.res, inUse[e.res], e.at, limits[e.res])
		}
	}
	t.Logf("peak use %v (limits %v)", peak, limits)
}

func checkNoGoroutineLeak(t *testing.T, before int) {
	t.Helper()
	for range 100 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
}

func TestSimulationSlotLimits(t *testing.T) { runSimulation(t, false) }

func TestSimulationProxyChurn(t *testing.T) { runSimulation(t, true) }
