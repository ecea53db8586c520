package scheduler

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// tickClock advances one microsecond per reading, so every stamp is unique
// and stamps taken under the scheduler's lock order its state changes.
type tickClock struct {
	*clock.Fake
	mu sync.Mutex
}

func newTickClock() *tickClock {
	return &tickClock{Fake: clock.NewFake(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))}
}

func (c *tickClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Advance(time.Microsecond)
	return c.Fake.Now()
}

// tryNext returns the next assignment if one can start at once.
func tryNext(t *testing.T, s *Scheduler) (Assignment, bool) {
	t.Helper()
	return nextWithin(t, s, 20*time.Millisecond)
}

func nextWithin(t *testing.T, s *Scheduler, d time.Duration) (Assignment, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	a, err := s.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return Assignment{}, false
	}
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return a, true
}

func mustNext(t *testing.T, s *Scheduler) Assignment {
	t.Helper()
	a, ok := nextWithin(t, s, 5*time.Second)
	if !ok {
		t.Fatalf("Next: nothing runnable; queue: %+v", s.Queued())
	}
	return a
}

func mustDone(t *testing.T, s *Scheduler, a Assignment, err error) Record {
	t.Helper()
	rec, derr := s.Done(a, err)
	if derr != nil {
		t.Fatalf("Done(%s): %v", a.Task.ID, derr)
	}
	return rec
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func task(id, vm, src, repo string, transports ...source.Transport) Task {
	return Task{ID: id, JobID: "job", VM: vm, Disk: id, SourceID: src, RepositoryID: repo, Transports: transports}
}

func anyReach(transports ...source.Transport) map[string][]source.Transport {
	return map[string][]source.Transport{AnySource: transports}
}
