package repo

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// verifyFixture is a repository with two committed points sharing chunks:
//
//	p1 (vm1) disk 0: 2 chunks + 1000-byte tail: A at 0, C (short) at 2
//	p1 (vm1) disk 1: 4 chunks: B at 0, X at 1 and 2 (same content)
//	p2 (vm2) disk 0: 3 chunks: X at 0, A at 2
type verifyFixture struct {
	r        *Repository
	be       *storage.Local
	p1, p2   *Manifest
	a, b, c  ChunkID
	x        ChunkID
	tailSize int64
}

func newVerifyFixture(t *testing.T, encrypted bool) (*verifyFixture, *Repository) {
	r, be := newTestRepo(t, encrypted)
	const cs = MinChunkSize
	a, b, x := chunkData(1, cs), chunkData(2, cs), chunkData(3, cs)
	c := chunkData(4, 1000)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := &verifyFixture{r: r, be: be, tailSize: 2*cs + 1000}
	f.p1 = commitTestPoint(t, r, "vm1", at,
		testDisk{f.tailSize, map[uint64][]byte{0: a, 2: c}},
		testDisk{4 * cs, map[uint64][]byte{0: b, 1: x, 2: x}})
	f.p2 = commitTestPoint(t, r, "vm2", at.Add(time.Hour), testDisk{3 * cs, map[uint64][]byte{0: x, 2: a}})
	h := r.NewHasher()
	f.a, f.b, f.c, f.x = h.Sum(a), h.Sum(b), h.Sum(c), h.Sum(x)
	return f, r
}

// problemKeys renders the fields a test checks, sorted for comparison.
func problemKeys(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s %s disk %d [%d+%d] %s", p.Point, p.VM, p.Disk, p.Offset, p.Length, p.File))
	}
	slices.Sort(out)
	return out
}

func TestVerifyClean(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []bool{false, true} {
		_, r := newVerifyFixture(t, enc)
		for _, read := range []bool{false, true} {
			var mu sync.Mutex
			var lastDone, lastTotal int64
			res, err := r.Verify(ctx, VerifyOptions{ReadData: read, Workers: 3, Progress: func(done, total int64) {
				mu.Lock()
				defer mu.Unlock()
				lastDone, lastTotal = done, total
			}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Problems) != 0 {
				t.Errorf("encrypted=%v read=%v: problems %+v", enc, read, res.Problems)
			}
			if res.Points != 2 || res.Chunks != 4 {
				t.Errorf("points %d chunks %d, want 2 and 4", res.Points, res.Chunks)
			}
			wantChecked := 0
			if read {
				wantChecked = 4
				if lastDone != lastTotal || lastTotal < 3*MinChunkSize+1000 {
					t.Errorf("progress ended at %d/%d", lastDone, lastTotal)
				}
			}
			if res.Checked != wantChecked {
				t.Errorf("checked %d chunks, want %d", res.Checked, wantChecked)
			}
		}
	}
}

func TestVerifyMissingChunk(t *testing.T) {
	ctx := context.Background()
	f, r := newVerifyFixture(t, true)
	if err := os.Remove(filePath(f.be, chunkName(f.x))); err != nil {
		t.Fatal(err)
	}
	for _, read := range []bool{false, true} {
		res, err := r.Verify(ctx, VerifyOptions{ReadData: read})
		if err != nil {
			t.Fatal(err)
		}
		const cs = MinChunkSize
		want := []string{
			// X at chunks 1 and 2 of p1 disk 1: one coalesced range.
			fmt.Sprintf("%s vm1 disk 1 [%d+%d] %s", f.p1.ID, cs, 2*cs, chunkName(f.x)),
			fmt.Sprintf("%s vm2 disk 0 [0+%d] %s", f.p2.ID, cs, chunkName(f.x)),
		}
		slices.Sort(want)
		if got := problemKeys(res.Problems); !slices.Equal(got, want) {
			t.Errorf("read=%v: problems\n  %s\nwant\n  %s", read, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		for _, p := range res.Problems {
			if !strings.Contains(p.Error, "missing") {
				t.Errorf("problem error %q does not say missing", p.Error)
			}
		}
		if read && res.Checked != 3 {
			t.Errorf("read %d chunks, want the 3 present ones", res.Checked)
		}
	}
}

func TestVerifyFlippedByte(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []bool{false, true} {
		f, r := newVerifyFixture(t, enc)
		// C is the 1000-byte tail of p1 disk 0; flip a byte in its payload.
		flipByte(t, f.be, chunkName(f.c), -20)
		res, err := r.Verify(ctx, VerifyOptions{})
		if err != nil || len(res.Problems) != 0 {
			t.Fatalf("without read-data: %+v, %v", res.Problems, err)
		}
		res, err = r.Verify(ctx, VerifyOptions{ReadData: true, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{fmt.Sprintf("%s vm1 disk 0 [%d+1000] %s", f.p1.ID, 2*MinChunkSize, chunkName(f.c))}
		if got := problemKeys(res.Problems); !slices.Equal(got, want) {
			t.Fatalf("encrypted=%v: problems %q, want %q", enc, got, want)
		}
		if e := res.Problems[0].Error; !strings.Contains(e, ErrCorrupt.Error()) || !strings.Contains(e, chunkName(f.c)) {
			t.Errorf("problem error %q", e)
		}
	}
}

func TestVerifyDamagedIndexAndManifest(t *testing.T) {
	ctx := context.Background()
	f, r := newVerifyFixture(t, true)
	flipByte(t, f.be, indexName(f.p1.ID, 1), -40)
	res, err := r.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("%s vm1 disk 1 [0+%d] %s", f.p1.ID, 4*MinChunkSize, indexName(f.p1.ID, 1))}
	if got := problemKeys(res.Problems); !slices.Equal(got, want) {
		t.Fatalf("problems %q, want %q", got, want)
	}
	if !strings.Contains(res.Problems[0].Error, ErrCorrupt.Error()) {
		t.Errorf("error %q", res.Problems[0].Error)
	}
	// B is only used by the damaged index, so it is not counted.
	if res.Points != 2 || res.Chunks != 3 {
		t.Errorf("points %d chunks %d, want 2 and 3", res.Points, res.Chunks)
	}

	flipByte(t, f.be, manifestName(f.p2.ID), -40)
	res, err = r.Verify(ctx, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, fmt.Sprintf("%s  disk -1 [0+0] %s", f.p2.ID, manifestName(f.p2.ID)))
	slices.Sort(want)
	if got := problemKeys(res.Problems); !slices.Equal(got, want) {
		t.Fatalf("problems %q, want %q", got, want)
	}
}

// TestVerifyReadDataConcurrent damages many chunks so that the workers
// record problems while the feeder is still running (run with -race).
func TestVerifyReadDataConcurrent(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t, false)
	const n = 48
	chunks := map[uint64][]byte{}
	for i := uint64(0); i < n; i++ {
		chunks[i] = chunkData(100+i, MinChunkSize)
	}
	m := commitTestPoint(t, r, "vm", time.Now(), testDisk{n * MinChunkSize, chunks})
	ix, err := r.LoadIndex(ctx, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, e := range ix.Entries {
		switch i % 3 {
		case 0:
			flipByte(t, be, chunkName(e.ID), -1)
			want = append(want, fmt.Sprintf("%s vm disk 0 [%d+%d] %s", m.ID, e.N*MinChunkSize, MinChunkSize, chunkName(e.ID)))
		case 1:
			if i%2 == 1 {
				if err := os.Remove(filePath(be, chunkName(e.ID))); err != nil {
					t.Fatal(err)
				}
				want = append(want, fmt.Sprintf("%s vm disk 0 [%d+%d] %s", m.ID, e.N*MinChunkSize, MinChunkSize, chunkName(e.ID)))
			}
		}
	}
	slices.Sort(want)
	res, err := r.Verify(ctx, VerifyOptions{ReadData: true, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := problemKeys(res.Problems); !slices.Equal(got, want) {
		t.Fatalf("%d problems, want %d:\n%q\n%q", len(got), len(want), got, want)
	}
}

// TestVerifySubset: read-data over the parts of a subset reads every chunk
// exactly once over Of runs, and a flipped chunk is found by the run whose
// part holds it (and by no other).
func TestVerifySubset(t *testing.T) {
	ctx := context.Background()
	f, r := newVerifyFixture(t, true)
	flipByte(t, f.be, chunkName(f.c), -20)
	const of = 3
	read, found := 0, 0
	for part := range of {
		s := Subset{Part: part, Of: of}
		res, err := r.Verify(ctx, VerifyOptions{ReadData: true, Subset: s})
		if err != nil {
			t.Fatal(err)
		}
		if res.Subset != fmt.Sprintf("%d/%d", part+1, of) {
			t.Errorf("subset %q", res.Subset)
		}
		read += res.Checked
		if len(res.Problems) > 0 {
			found++
			if !s.Has(f.c) {
				t.Errorf("part %d found damage in a chunk it does not read: %+v", part, res.Problems)
			}
		}
	}
	if read != 4 || found != 1 {
		t.Errorf("over %d runs: read %d chunks (want 4), found the damage %d times (want 1)", of, read, found)
	}
	if _, err := r.Verify(ctx, VerifyOptions{ReadData: true, Subset: Subset{Part: 3, Of: 3}}); err == nil {
		t.Error("part 3 of 3 accepted")
	}
}
