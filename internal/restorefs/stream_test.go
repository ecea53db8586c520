package restorefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// streamAll streams d and returns the chunk numbers fn saw, checking each
// chunk's bytes against the image.
func streamAll(t *testing.T, d *Disk, img *image, workers int) ([]uint64, error) {
	t.Helper()
	var seen []uint64
	err := d.Stream(context.Background(), workers, func(n uint64, data []byte) error {
		want := img.data[int64(n)*cs : int64(n)*cs+int64(d.Index().ChunkLen(n))]
		if !bytes.Equal(data, want) {
			t.Errorf("chunk %d: wrong bytes", n)
		}
		seen = append(seen, n)
		return nil
	})
	return seen, err
}

// Stream hands every data chunk over once, in disk order, with the right
// bytes; a chunk that occurs several times is fetched once; the cache
// bound holds even when it is smaller than the prefetch window.
func TestStreamOrderAndBound(t *testing.T) {
	tests := []struct {
		name    string
		workers int
		cache   int64
	}{
		{"one worker", 1, 0},
		{"several workers", 4, 0},
		{"cache smaller than the window", 4, 3 * cs},
		{"cache of two chunks", 2, 2 * cs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := standardFixture(t)
			cnt := newCountingStore(fx.r)
			d := fx.open(t, cnt, 0, Options{CacheBytes: tc.cache, ReadAhead: -1})
			seen, err := streamAll(t, d, fx.images[0], tc.workers)
			if err != nil {
				t.Fatal(err)
			}
			var want []uint64
			for _, e := range d.Index().Entries {
				want = append(want, e.N)
			}
			if fmt.Sprint(seen) != fmt.Sprint(want) {
				t.Fatalf("chunks %v, want %v", seen, want)
			}
			for id, n := range cnt.perID {
				if n != 1 && tc.cache == 0 {
					t.Errorf("chunk %s fetched %d times", id, n)
				}
			}
			if tc.cache > 0 {
				if st := d.Stats(); st.CachePeakBytes > tc.cache {
					t.Errorf("cache peak %d, bound %d", st.CachePeakBytes, tc.cache)
				}
			}
		})
	}
}

// The first failure stops the stream: a damaged chunk gives an error that
// names it, after the chunks before it were handed over in order and none
// after; an error of fn is returned as is.
func TestStreamStopsAtFirstError(t *testing.T) {
	fx := standardFixture(t)
	d := fx.open(t, nil, 0, StreamOptions())
	id, _ := d.Index().Lookup(3)
	name := filepath.Join(fx.root, "chunks", id.String()[:2], id.String())
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-5] ^= 0x40
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	seen, err := streamAll(t, d, fx.images[0], 3)
	if !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	for _, want := range []string{fx.m.ID, "disk 0", "chunk 3", fmt.Sprintf("offset %d", 3*cs)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if fmt.Sprint(seen) != "[0 1 2]" {
		t.Errorf("chunks handed over %v, want [0 1 2]", seen)
	}

	errStop := errors.New("stop")
	var calls int
	err = d.Stream(context.Background(), 2, func(n uint64, _ []byte) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Fatalf("fn error: %v after %d calls, want errStop after 1", err, calls)
	}
}

// Cancelling the context ends a stream whose fetches hang; the Disk
// closes afterwards (no fetch is left behind).
func TestStreamCancel(t *testing.T) {
	fx := standardFixture(t)
	cnt := newCountingStore(fx.r)
	cnt.gate = make(chan struct{})
	cnt.started = make(chan struct{}, 64)
	d := fx.open(t, cnt, 0, StreamOptions())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- d.Stream(ctx, 2, func(uint64, []byte) error { return nil })
	}()
	<-cnt.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Stream(context.Background(), 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("stream after close: %v", err)
	}
}

// ReadChunk reads data and zero chunks whole, without read-ahead.
func TestReadChunk(t *testing.T) {
	fx := standardFixture(t)
	cnt := newCountingStore(fx.r)
	d := fx.open(t, cnt, 0, StreamOptions())
	img := fx.images[0].data
	last := d.Index().Chunks() - 1
	buf := make([]byte, cs)
	for _, n := range []uint64{0, 1, 10, 16, 33, last} {
		got, err := d.ReadChunk(context.Background(), n, buf)
		want := img[int64(n)*cs : int64(n)*cs+int64(d.Index().ChunkLen(n))]
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("chunk %d: %v", n, err)
		}
	}
	if g := cnt.gets.Load(); g != 3 { // chunks 0, 1 and the last: no read-ahead
		t.Errorf("%d fetches, want 3", g)
	}
	if _, err := d.ReadChunk(context.Background(), last+1, buf); err == nil {
		t.Error("a chunk beyond the disk was read")
	}
}
