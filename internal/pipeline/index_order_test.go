package pipeline

import (
	"bytes"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// TestIndexOrderBounded: workers finishing in any order within a window
// of w chunks in flight leave at most w results waiting, however many
// chunks the disk has, and the index comes out as if built in order.
func TestIndexOrderBounded(t *testing.T) {
	const chunks, window = 100000, 16
	for _, name := range []string{"reversed windows", "every other zero"} {
		t.Run(name, func(t *testing.T) {
			enc, err := repo.NewIndexEncoder(chunks*cs, cs, repo.EncoderOptions{SpillAt: 64 << 10, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			want := &repo.Index{DiskSize: chunks * cs, ChunkSize: cs}
			o := newIndexOrder(enc)
			maxPending := 0
			for base := uint64(0); base < chunks; base += window {
				for n := base; n < base+window; n++ {
					o.dispatched(n)
				}
				for n := base + window; n > base; n-- { // the last dispatched finishes first
					id := repo.ChunkID{byte(n - 1), byte((n - 1) >> 8), byte((n - 1) >> 16)}
					nonZero := name != "every other zero" || n%2 == 0
					o.done(n-1, id, nonZero)
					maxPending = max(maxPending, o.pending())
				}
				for n := base; n < base+window; n++ {
					if name != "every other zero" || (n+1)%2 == 0 {
						want.Entries = append(want.Entries, repo.IndexEntry{N: n, ID: repo.ChunkID{byte(n), byte(n >> 8), byte(n >> 16)}})
					}
				}
			}
			if err := o.finish(); err != nil {
				t.Fatal(err)
			}
			if maxPending >= window {
				t.Fatalf("%d results waited at once with %d in flight", maxPending, window)
			}
			if cap(o.queue) > 4*window {
				t.Fatalf("the dispatch queue kept room for %d chunks with %d in flight", cap(o.queue), window)
			}
			wantB, _ := want.MarshalBinary()
			if enc.Buffered() > 64<<10 {
				t.Fatalf("%d entry bytes in memory with a 64 KiB spill threshold", enc.Buffered())
			}
			got, err := enc.Bytes()
			if err != nil || !bytes.Equal(got, wantB) {
				t.Fatal("the encoded index differs from the one built in order")
			}
		})
	}
}

func TestIndexOrderIncomplete(t *testing.T) {
	enc, _ := repo.NewIndexEncoder(10*cs, cs, repo.EncoderOptions{})
	o := newIndexOrder(enc)
	o.dispatched(1)
	o.dispatched(2)
	o.done(2, repo.ChunkID{2}, true)
	if err := o.finish(); err == nil {
		t.Fatal("a dispatched chunk without a result went unnoticed")
	}
}
