package repo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// gcFixture is a repository (clock at real time, as file times are real)
// holding:
//
//	ref    chunk of a committed point, 48 h old
//	old    unreferenced chunk, 48 h old                → removed
//	young  unreferenced chunk, 10 min old              → kept (grace 1 h)
//	reused unreferenced chunk, 48 h old, touched now   → kept
//	orphan index of an uncommitted point, 48 h old     → removed
//	fresh  index of an uncommitted point, written now  → kept
type gcFixture struct {
	r                       *Repository
	be                      *storage.Local
	clk                     *testClock
	point                   *Manifest
	ref, old, young, reused ChunkID
	orphan, fresh           *Manifest
}

func newGCFixture(t *testing.T) *gcFixture {
	ctx := context.Background()
	now := time.Now()
	clk := newTestClock(now)
	r, be := newClockRepo(t, false, clk)
	f := &gcFixture{r: r, be: be, clk: clk}
	long := now.Add(-48 * time.Hour)
	f.point = commitTestPoint(t, r, "vm", long, testDisk{2 * MinChunkSize, map[uint64][]byte{1: chunkData(1, MinChunkSize)}})
	f.ref = r.NewHasher().Sum(chunkData(1, MinChunkSize))
	f.old = putTestChunk(t, r, chunkData(2, MinChunkSize))
	f.young = putTestChunk(t, r, chunkData(3, 1000))
	f.reused = putTestChunk(t, r, chunkData(4, 1000))
	f.orphan = writeTestIndexes(t, r, "vm", long, testDisk{MinChunkSize, nil})
	f.fresh = writeTestIndexes(t, r, "vm", now, testDisk{MinChunkSize, nil})
	for _, id := range []ChunkID{f.ref, f.old, f.reused} {
		setMtime(t, be, chunkName(id), long)
	}
	setMtime(t, be, chunkName(f.young), now.Add(-10*time.Minute))
	setMtime(t, be, indexName(f.orphan.ID, 0), long)
	setMtime(t, be, indexName(f.point.ID, 0), long)
	setMtime(t, be, manifestName(f.point.ID), long)
	if ok, err := r.TouchChunk(ctx, f.reused); !ok || err != nil {
		t.Fatalf("touch: %v %v", ok, err)
	}
	return f
}

func (f *gcFixture) has(t *testing.T, name string) bool { return exists(t, f.be, name) }

func TestGC(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t)
	oldSize := fileSize(t, f.be, chunkName(f.old))
	res, err := f.r.GC(ctx, GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	want := GCResult{Referenced: 1, Removed: 1, RemovedBytes: oldSize, Kept: 2, RemovedIndexes: 1, RemovedDirs: 1}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("result %+v, want %+v", res, want)
	}
	for name, want := range map[string]bool{
		chunkName(f.ref):            true,
		chunkName(f.old):            false,
		chunkName(f.young):          true,
		chunkName(f.reused):         true,
		indexName(f.point.ID, 0):    true,
		indexName(f.orphan.ID, 0):   false,
		indexName(f.fresh.ID, 0):    true,
		manifestName(f.point.ID):    true,
		chunkName(f.old) + ".gc":    false,
		chunkName(f.reused) + ".gc": false,
	} {
		if got := f.has(t, name); got != want {
			t.Errorf("%s exists = %v, want %v", name, got, want)
		}
	}
	if n := countFiles(t, f.be, "locks"); n != 0 {
		t.Errorf("%d lock files left", n)
	}
	vr, err := f.r.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil || len(vr.Problems) != 0 || vr.Checked != 1 {
		t.Errorf("verify after gc: %+v, %v", vr, err)
	}
	// A second run finds nothing more to do.
	res, err = f.r.GC(ctx, GCOptions{Grace: time.Hour})
	if want := (GCResult{Referenced: 1, Kept: 2}); err != nil || !reflect.DeepEqual(res, want) {
		t.Errorf("second gc: %+v, %v; want %+v", res, err, want)
	}
}

func TestGCDryRun(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t)
	oldSize := fileSize(t, f.be, chunkName(f.old))
	before := listAll(t, f.be)
	res, err := f.r.GC(ctx, GCOptions{Grace: time.Hour, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := (GCResult{Referenced: 1, Removed: 1, RemovedBytes: oldSize, Kept: 2}); !reflect.DeepEqual(res, want) {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if after := listAll(t, f.be); after != before {
		t.Errorf("dry run changed the repository:\nbefore %s\nafter  %s", before, after)
	}
}

func TestGCGraceZeroRemovesYoung(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t)
	// The clock runs an hour ahead: young (10 min old) is now older than
	// the cut-off, reused (touched a moment ago) too.
	f.clk.Set(time.Now().Add(time.Hour))
	res, err := f.r.GC(ctx, GCOptions{Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 3 || res.Kept != 0 || res.RemovedIndexes != 2 {
		t.Errorf("result %+v, want 3 chunks and 2 indexes removed", res)
	}
	if !f.has(t, chunkName(f.ref)) || f.has(t, chunkName(f.young)) {
		t.Error("referenced chunk removed or young chunk kept")
	}
}

// TestGCSharedLockMovesCutoff: a backup that took its shared lock 3 h ago
// and reused a chunk 2 h 59 min ago keeps that chunk, although it is older
// than GC start − grace.
func TestGCSharedLockMovesCutoff(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		lock     bool
		stale    bool // the lock file was not refreshed for 10 minutes
		wantKept bool
	}{
		{"no backup", false, false, false},
		{"running backup", true, false, true},
		{"dead backup", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			clk := newTestClock(now.Add(-3 * time.Hour))
			r, be := newClockRepo(t, false, clk)
			var lock *Lock
			if tc.lock {
				var err error
				if lock, err = r.Lock(ctx, LockShared); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = lock.Release() }()
				if tc.stale {
					setMtime(t, be, lock.Info.name, now.Add(-10*time.Minute))
				}
			}
			id := putTestChunk(t, r, chunkData(7, 1000))
			setMtime(t, be, chunkName(id), now.Add(-3*time.Hour+time.Minute))
			clk.Set(now)
			res, err := r.GC(ctx, GCOptions{Grace: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if got := exists(t, be, chunkName(id)); got != tc.wantKept {
				t.Errorf("chunk kept = %v, want %v (result %+v)", got, tc.wantKept, res)
			}
			if tc.lock {
				if got, want := exists(t, be, lock.Info.name), !tc.stale; got != want {
					t.Errorf("lock file exists = %v, want %v", got, want)
				}
			}
		})
	}
}

// TestGCStaleLocks: locks of dead processes on this host and locks nobody
// refreshed are removed; live ones are kept.
func TestGCStaleLocks(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock(time.Now())
	r, be := newClockRepo(t, false, clk)
	host, _ := os.Hostname()
	deadPID := pidMax(t) + 1 // kill(2) says ESRCH: no such process
	write := func(name string, li LockInfo, age time.Duration) {
		b, _ := json.Marshal(li)
		if err := be.Save(ctx, name, b); err != nil {
			t.Fatal(err)
		}
		setMtime(t, be, name, time.Now().Add(-age))
	}
	started := time.Now().Add(-time.Hour)
	write("locks/dead", LockInfo{Kind: LockShared, Hostname: host, PID: deadPID, Started: started}, 0)
	write("locks/self", LockInfo{Kind: LockShared, Hostname: host, PID: os.Getpid(), Started: started}, 0)
	write("locks/remote", LockInfo{Kind: LockShared, Hostname: host + "-other", PID: deadPID, Started: started}, time.Minute)
	write("locks/remote-stale", LockInfo{Kind: LockShared, Hostname: host + "-other", PID: 1, Started: started}, 6*time.Minute)
	if err := be.Save(ctx, "locks/garbage", []byte("{")); err != nil {
		t.Fatal(err)
	}
	setMtime(t, be, "locks/garbage", time.Now().Add(-time.Hour))
	live, err := r.ActiveLocks(ctx)
	if err != nil || len(live) != 2 {
		t.Fatalf("active locks %+v, %v; want self and remote", live, err)
	}
	res, err := r.GC(ctx, GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.RemovedLocks != 3 {
		t.Errorf("removed %d locks, want 3", res.RemovedLocks)
	}
	for name, want := range map[string]bool{"locks/dead": false, "locks/self": true, "locks/remote": true,
		"locks/remote-stale": false, "locks/garbage": false} {
		if got := exists(t, be, name); got != want {
			t.Errorf("%s exists = %v, want %v", name, got, want)
		}
	}
}

func TestGCExclusive(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t, false)
	l, err := r.Lock(ctx, LockExclusive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(ctx, GCOptions{}); !errors.Is(err, ErrLocked) {
		t.Errorf("gc while locked: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(ctx, GCOptions{}); err != nil {
		t.Errorf("gc after release: %v", err)
	}
}

// raceBackend simulates a backup touching (or storing again) a chunk
// between GC's listing and its moving the chunk aside.
type raceBackend struct {
	storage.Backend
	restore bool // also store the chunk again under its name
}

func (b *raceBackend) Rename(ctx context.Context, from, to string) error {
	if !strings.HasPrefix(from, "chunks/") || !strings.HasSuffix(to, ".gc") {
		return b.Backend.Rename(ctx, from, to)
	}
	if err := b.Backend.Touch(ctx, from); err != nil {
		return err
	}
	data, err := b.Backend.Load(ctx, from)
	if err != nil {
		return err
	}
	if err := b.Backend.Rename(ctx, from, to); err != nil {
		return err
	}
	if b.restore {
		return b.Backend.Save(ctx, from, data)
	}
	return nil
}

func TestGCTouchRacesSweep(t *testing.T) {
	ctx := context.Background()
	for _, restore := range []bool{false, true} {
		clk := newTestClock(time.Now())
		_, be := newClockRepo(t, false, clk)
		rb := &raceBackend{Backend: be, restore: restore}
		r, err := Open(ctx, rb, nil, Options{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		data := chunkData(9, 5000)
		id := putTestChunk(t, r, data)
		setMtime(t, be, chunkName(id), time.Now().Add(-48*time.Hour))
		res, err := r.GC(ctx, GCOptions{Grace: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if res.Removed != 0 || res.Kept != 1 {
			t.Errorf("restore=%v: result %+v, want the chunk kept", restore, res)
		}
		if exists(t, be, chunkName(id)+".gc") {
			t.Errorf("restore=%v: chunk left aside", restore)
		}
		if got, err := r.GetChunk(ctx, r.NewHasher(), id, nil); err != nil || string(got) != string(data) {
			t.Errorf("restore=%v: chunk after gc: %v", restore, err)
		}
	}
}

// TestGCInterruptedSweep: a GC killed after moving chunks aside leaves
// .gc files. The next GC deletes unreferenced ones and puts back one a
// committed point references (a backup reused it just before the move).
func TestGCInterruptedSweep(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock(time.Now())
	r, be := newClockRepo(t, false, clk)
	long := time.Now().Add(-48 * time.Hour)
	m := commitTestPoint(t, r, "vm", long, testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	ref := r.NewHasher().Sum(chunkData(1, MinChunkSize))
	unref := putTestChunk(t, r, chunkData(2, 100))
	for _, id := range []ChunkID{ref, unref} {
		if err := be.Rename(ctx, chunkName(id), chunkName(id)+".gc"); err != nil {
			t.Fatal(err)
		}
		setMtime(t, be, chunkName(id)+".gc", long)
	}
	if _, err := r.GC(ctx, GCOptions{Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		chunkName(ref): true, chunkName(ref) + ".gc": false,
		chunkName(unref): false, chunkName(unref) + ".gc": false,
	} {
		if got := exists(t, be, name); got != want {
			t.Errorf("%s exists = %v, want %v", name, got, want)
		}
	}
	vr, err := r.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil || len(vr.Problems) != 0 {
		t.Errorf("point %s after gc: %+v, %v", m.ID, vr.Problems, err)
	}
}

// TestGCStopsOnDamagedIndex: GC must not delete anything when it cannot
// read every committed index.
func TestGCStopsOnDamagedIndex(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t)
	flipByte(t, f.be, indexName(f.point.ID, 0), -5)
	before := listAll(t, f.be)
	if _, err := f.r.GC(ctx, GCOptions{Grace: time.Hour}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("gc with a damaged index: %v", err)
	}
	if after := listAll(t, f.be); after != before {
		t.Errorf("gc changed the repository:\nbefore %s\nafter  %s", before, after)
	}
}

func fileSize(t *testing.T, be *storage.Local, name string) int64 {
	t.Helper()
	fi, err := os.Stat(filePath(be, name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func countFiles(t *testing.T, be *storage.Local, dir string) int {
	t.Helper()
	n := 0
	if err := be.List(context.Background(), dir, func(storage.FileInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// listAll renders every stored file except locks with its size and time.
func listAll(t *testing.T, be *storage.Local) string {
	t.Helper()
	var sb strings.Builder
	for _, dir := range []string{"chunks", "indexes", "points", "keys"} {
		err := be.List(context.Background(), dir, func(fi storage.FileInfo) error {
			sb.WriteString(fi.Name + " " + strconv.FormatInt(fi.Size, 10) + " " + fi.ModTime.Format(time.RFC3339Nano) + "\n")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return sb.String()
}

// pidMax returns the largest process ID of this system.
func pidMax(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 1 << 22
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
