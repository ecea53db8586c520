package restorefs

import (
	"context"
	"testing"
	"time"
)

// TestStreamFetchesInParallel: a streamed restore has several chunk
// fetches in flight at once (what hides an object store's per-request
// latency): with 4 workers, 4 fetches start before any of them completes.
func TestStreamFetchesInParallel(t *testing.T) {
	fx := standardFixture(t)
	cnt := newCountingStore(fx.r)
	const workers = 4
	cnt.gate = make(chan struct{})
	cnt.started = make(chan struct{}, 1000)
	d := fx.open(t, cnt, 0, Options{ReadAhead: -1})
	if len(d.Index().Entries) < workers {
		t.Skipf("fixture has %d chunks", len(d.Index().Entries))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Stream(ctx, workers, func(uint64, []byte) error { return nil }) }()
	deadline := time.After(time.Minute) // a failure bound, not a synchronisation
	for i := 0; i < workers; i++ {
		select {
		case <-cnt.started:
		case err := <-done:
			t.Fatalf("stream ended after %d concurrent fetches: %v", i, err)
		case <-deadline:
			t.Fatalf("only %d of %d fetches in flight at once", i, workers)
		}
	}
	close(cnt.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
