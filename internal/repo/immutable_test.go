package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

const testWindow = 7 * 24 * time.Hour

// TestImmutableBackend: what the hardened repository's storage refuses
// and lets through, before and after the window (fake clock; the files'
// times are real, written now).
func TestImmutableBackend(t *testing.T) {
	ctx := context.Background()
	chunk := "chunks/ab/ab" + strings.Repeat("0", 62)
	for _, c := range []struct {
		name    string
		setup   []string // files stored first (content "old")
		later   time.Duration
		op      func(im *Immutable) error
		refused bool
		check   func(t *testing.T, be *storage.Local)
	}{
		{name: "remove young chunk", setup: []string{chunk}, op: remove(chunk), refused: true},
		{name: "remove old chunk", setup: []string{chunk}, later: testWindow + time.Minute, op: remove(chunk),
			check: gone(chunk)},
		{name: "remove just before the window ends", setup: []string{chunk}, later: testWindow - time.Minute,
			op: remove(chunk), refused: true},
		{name: "overwrite young manifest", setup: []string{"points/00aa"}, op: save("points/00aa"), refused: true,
			check: content("points/00aa", "old")},
		{name: "overwrite old manifest", setup: []string{"points/00aa"}, later: testWindow + time.Minute,
			op: save("points/00aa"), check: content("points/00aa", "new")},
		{name: "remove young manifest", setup: []string{"points/00aa"}, op: remove("points/00aa"), refused: true},
		{name: "existing chunk is kept, not overwritten", setup: []string{chunk}, op: save(chunk),
			check: content(chunk, "old")},
		{name: "new chunk", op: save(chunk), check: content(chunk, "new")},
		{name: "rename young chunk aside", setup: []string{chunk}, op: rename(chunk, chunk+".gc"), refused: true},
		{name: "put a chunk back", setup: []string{chunk + ".gc"}, op: rename(chunk+".gc", chunk), check: content(chunk, "old")},
		{name: "remove an aside copy of a stored chunk", setup: []string{chunk, chunk + ".gc"}, op: remove(chunk + ".gc"),
			check: gone(chunk + ".gc")},
		{name: "young index of a committed point", setup: []string{"points/00aa", "indexes/00aa/disk-0"},
			op: save("indexes/00aa/disk-0"), refused: true},
		{name: "index of a point not committed", setup: []string{"indexes/00aa/disk-0"},
			op: save("indexes/00aa/disk-0"), check: content("indexes/00aa/disk-0", "new")},
		{name: "young scan of a committed point", setup: []string{"points/00aa", "scans/00aa/clamav"},
			op: remove("scans/00aa/clamav"), refused: true},
		{name: "scan of a forgotten point", setup: []string{"scans/00aa/clamav"}, op: remove("scans/00aa/clamav"),
			check: gone("scans/00aa/clamav")},
		{name: "lock file", setup: []string{"locks/x.shared"}, op: remove("locks/x.shared"), check: gone("locks/x.shared")},
		{name: "hold released", setup: []string{"holds/00aa/h1"}, op: remove("holds/00aa/h1"), check: gone("holds/00aa/h1")},
		{name: "hold replaced", setup: []string{"holds/00aa/h1"}, op: save("holds/00aa/h1"), check: content("holds/00aa/h1", "new")},
		{name: "config rewritten", setup: []string{"config"}, later: 100 * testWindow, op: save("config"), refused: true},
		{name: "key file removed", setup: []string{"keys/k1"}, later: 100 * testWindow, op: remove("keys/k1"), refused: true},
		{name: "key file added", setup: []string{"keys/k1"}, op: save("keys/k2"), check: content("keys/k2", "new")},
		{name: "missing file removed", op: remove(chunk)},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := storage.NewLocal(t.TempDir())
			for _, n := range c.setup {
				if err := be.Save(ctx, n, []byte("old")); err != nil {
					t.Fatal(err)
				}
			}
			clk := newTestClock(time.Now().Add(c.later))
			im := NewImmutable(be, ImmutableOptions{Window: testWindow, Clock: clk, Reason: "test window"})
			err := c.op(im)
			var ie *storage.ImmutableError
			switch {
			case c.refused && (!errors.Is(err, storage.ErrImmutable) || !errors.As(err, &ie)):
				t.Fatalf("got %v, want a refusal", err)
			case c.refused && ie.Until.IsZero() != (classOfName(c.name) == classKey):
				t.Fatalf("refusal %q: a window's refusal names the date, a key file's none", err)
			case !c.refused && err != nil:
				t.Fatalf("refused: %v", err)
			}
			if c.check != nil {
				c.check(t, be)
			}
		})
	}
}

// classOfName is the class of the file a table row's name is about.
func classOfName(row string) fileClass {
	if strings.HasPrefix(row, "config") || strings.HasPrefix(row, "key") {
		return classKey
	}
	return classFree
}

func remove(name string) func(*Immutable) error {
	return func(im *Immutable) error { return im.Remove(context.Background(), name) }
}

func save(name string) func(*Immutable) error {
	return func(im *Immutable) error { return im.Save(context.Background(), name, []byte("new")) }
}

func rename(from, to string) func(*Immutable) error {
	return func(im *Immutable) error { return im.Rename(context.Background(), from, to) }
}

func gone(name string) func(*testing.T, *storage.Local) {
	return func(t *testing.T, be *storage.Local) {
		t.Helper()
		if exists(t, be, name) {
			t.Fatalf("%s still there", name)
		}
	}
}

func content(name, want string) func(*testing.T, *storage.Local) {
	return func(t *testing.T, be *storage.Local) {
		t.Helper()
		b, err := be.Load(context.Background(), name)
		if err != nil || !bytes.Equal(b, []byte(want)) {
			t.Fatalf("%s: %q %v, want %q", name, b, err, want)
		}
	}
}

// TestImmutableForgetAndGC: on a hardened repository, forget of a young
// point is refused naming the point and the date, gc with no grace keeps
// everything and says so; after the window both work.
func TestImmutableForgetAndGC(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock(time.Now())
	r0, be := newClockRepo(t, true, clk)
	im := NewImmutable(be, ImmutableOptions{Window: testWindow, Clock: clk, Reason: "kept 7 days"})
	r := r0.WithBackend(im)
	old := commitTestPoint(t, r, "vm1", clk.Now(), testDisk{size: MinChunkSize, chunks: map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	commitTestPoint(t, r, "vm1", clk.Now(), testDisk{size: MinChunkSize, chunks: map[uint64][]byte{0: chunkData(2, MinChunkSize)}})
	m, err := r.LoadManifest(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	err = r.RemovePoint(ctx, m)
	if !errors.Is(err, storage.ErrImmutable) || !strings.Contains(err.Error(), "forget point "+old.ID+" of VM vm1") ||
		!strings.Contains(err.Error(), " until "+clk.Now().Add(testWindow).UTC().Format("2006-01-02")) {
		t.Fatalf("forget of a young point: %v", err)
	}
	if _, err := r.LoadManifest(ctx, old.ID); err != nil {
		t.Fatalf("the refused forget removed something: %v", err)
	}
	// An unreferenced chunk (a backup that never committed) is kept too.
	stray := putTestChunk(t, r, chunkData(3, MinChunkSize))
	res, err := r.GC(ctx, GCOptions{})
	if err != nil || res.Removed != 0 || !strings.Contains(res.Immutable, "is kept") {
		t.Fatalf("gc inside the window: %+v %v", res, err)
	}
	if !exists(t, be, chunkName(stray)) {
		t.Fatal("gc removed a young chunk")
	}

	clk.Advance(testWindow + time.Hour)
	if err := r.RemovePoint(ctx, m); err != nil {
		t.Fatalf("forget after the window: %v", err)
	}
	// A temporary file a killed writer left is not data: gc removes it.
	tmp := filepath.Join(be.Location(), "chunks", ".tmp-left")
	if err := os.WriteFile(tmp, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	res, err = r.GC(ctx, GCOptions{})
	if _, serr := os.Stat(tmp); err == nil && !os.IsNotExist(serr) {
		t.Errorf("gc left a stale temporary file: %v (removed %d)", serr, res.RemovedTemp)
	}
	if err != nil || res.Removed != 2 {
		t.Fatalf("gc after the window: %+v %v", res, err)
	}
	if vr, err := r.Verify(ctx, VerifyOptions{ReadData: true}); err != nil || len(vr.Problems) != 0 {
		t.Fatalf("verify: %+v %v", vr, err)
	}
}
