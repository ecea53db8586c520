package repo

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

const day = 24 * time.Hour

// newLockedRepo is a repository with Object Lock (1 day, compliance) on
// the in-memory versioned store, with a fake clock.
func newLockedRepo(t *testing.T) (*Repository, *memVersioned, *testClock) {
	t.Helper()
	clk := newTestClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	be := newMemVersioned(clk.Now)
	r, err := Init(context.Background(), be, []byte("secret"), InitOptions{Encrypted: true, KDF: fastKDF,
		ChunkSize: MinChunkSize, Clock: clk, ObjectLock: &ObjectLock{Days: 1, Mode: storage.ModeCompliance}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, be, clk
}

func retentionOf(t *testing.T, be *memVersioned, name string) time.Time {
	t.Helper()
	ret, err := be.Retention(context.Background(), name)
	if err != nil {
		t.Fatalf("retention of %s: %v", name, err)
	}
	return ret.Until
}

// TestObjectLockRetentionRule: what each file gets when written, and when
// a reuse extends a chunk's retention (and when it costs nothing).
func TestObjectLockRetentionRule(t *testing.T) {
	r, be, clk := newLockedRepo(t)
	ctx := context.Background()
	t0 := clk.Now()
	m := commitTestPoint(t, r, "vm", t0, testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	id := r.NewHasher().Sum(chunkData(1, MinChunkSize))
	atLeast := func(name string, want time.Time) {
		t.Helper()
		if got := retentionOf(t, be, name); got.Before(want) || got.After(want.Add(2*time.Second)) {
			t.Errorf("%s locked until %v, want %v", name, got, want)
		}
	}
	atLeast(manifestName(m.ID), t0.Add(day))
	atLeast(indexName(m.ID, 0), t0.Add(day*3/2))
	atLeast(chunkName(id), t0.Add(day*3/2))
	atLeast(configFile, t0.Add(day*3/2))
	_ = be.List(ctx, keysDir, func(fi storage.FileInfo) error { atLeast(fi.Name, t0.Add(day*3/2)); return nil })

	// a reuse with more than 1.25 days left costs no retention request
	clk.Advance(day / 8)
	before := be.calls["retention"]
	if ok, err := r.TouchChunk(ctx, id); !ok || err != nil {
		t.Fatalf("touch: %v %v", ok, err)
	}
	if be.calls["retention"] != before {
		t.Errorf("a reuse with 1.375 days left extended the retention")
	}
	if be.versions(chunkName(id)) != 1 {
		t.Errorf("a reuse wrote a new version")
	}
	// with less left, it extends to now + 1.5 days
	clk.Advance(day / 4)
	if ok, err := r.TouchChunk(ctx, id); !ok || err != nil {
		t.Fatalf("touch: %v %v", ok, err)
	}
	atLeast(chunkName(id), clk.Now().Add(day*3/2))
	// a commit keeps the config and key files locked as long
	clk.Advance(day / 2)
	commitTestPoint(t, r, "vm", clk.Now(), testDisk{MinChunkSize, nil})
	atLeast(configFile, clk.Now().Add(day*3/2))
}

// TestObjectLockForgetAndGC: a locked point is not removed and gc keeps
// locked chunks; once the retention ended both go, every version of them.
func TestObjectLockForgetAndGC(t *testing.T) {
	r, be, clk := newLockedRepo(t)
	ctx := context.Background()
	t0 := clk.Now()
	m := commitTestPoint(t, r, "vm", t0, testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	garbage := putTestChunk(t, r, chunkData(2, 1000))
	clk.Advance(day / 2)
	until, err := r.PointLockedUntil(ctx, m)
	if err != nil || until.Before(t0.Add(day)) {
		t.Fatalf("locked until %v %v", until, err)
	}
	err = r.RemovePoint(ctx, m)
	if !errors.Is(err, ErrPointLocked) || !strings.Contains(err.Error(), m.ID) {
		t.Fatalf("remove a locked point: %v", err)
	}
	res, err := r.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 0 || res.Locked.Kept != 1 || res.Locked.Until.Before(t0.Add(day*3/2)) {
		t.Errorf("gc under lock: %+v", res)
	}
	if be.versions(chunkName(garbage)) != 1 {
		t.Errorf("gc touched a locked chunk: %d versions", be.versions(chunkName(garbage)))
	}

	clk.Advance(2 * day)
	if until, err := r.PointLockedUntil(ctx, m); err != nil || !until.IsZero() {
		t.Fatalf("after the retention: locked until %v %v", until, err)
	}
	if err := r.RemovePoint(ctx, m); err != nil {
		t.Fatalf("remove an expired point: %v", err)
	}
	res, err = r.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 2 || res.Locked.Kept != 0 {
		t.Errorf("gc after the retention: %+v", res)
	}
	for _, name := range []string{manifestName(m.ID), indexName(m.ID, 0), chunkName(garbage)} {
		if n := be.versions(name); n != 0 {
			t.Errorf("%s: %d versions left (a delete marker would let recover bring it back)", name, n)
		}
	}
	// nothing for recover to bring back
	rec, err := Recover(ctx, be, false)
	if err != nil || len(rec.Points) != 0 || rec.DeleteMarkers != 0 {
		t.Errorf("recover after a legitimate forget: %+v %v", rec, err)
	}
}

// TestObjectLockGCRace: a backup that reuses an expired chunk after gc
// checked it wins: the store refuses the deletion of the version whose
// retention the backup extended.
func TestObjectLockGCRace(t *testing.T) {
	r, be, clk := newLockedRepo(t)
	ctx := context.Background()
	id := putTestChunk(t, r, chunkData(3, 1000))
	clk.Advance(2 * day)
	lb := r.objectLock()
	// gc read the expired retention; then the backup reuses the chunk
	if ok, err := r.TouchChunk(ctx, id); !ok || err != nil {
		t.Fatal(ok, err)
	}
	var res GCResult
	// sweepLocked re-reads: to model the race, remove directly as gc would after its check
	err := lb.Remove(ctx, chunkName(id))
	if !errors.Is(err, storage.ErrRetention) {
		t.Fatalf("removing a chunk the backup extended: %v", err)
	}
	if removed, err := r.sweepLocked(ctx, lb, chunkName(id), false, &res); removed || err != nil || res.Locked.Kept != 1 {
		t.Errorf("sweep: removed %v, %v, %+v", removed, err, res)
	}
	if _, err := be.Load(ctx, chunkName(id)); err != nil {
		t.Errorf("the chunk is gone: %v", err)
	}
}

// TestObjectLockRefusedLocally: a local directory cannot hold a locked
// repository; an opened locked repository on such a backend is refused.
func TestObjectLockRefusedLocally(t *testing.T) {
	be := storage.NewLocal(t.TempDir())
	_, err := Init(context.Background(), be, nil, InitOptions{ObjectLock: &ObjectLock{Days: 1, Mode: storage.ModeCompliance}})
	if !errors.Is(err, ErrNoObjectLock) {
		t.Fatalf("init locked on a directory: %v", err)
	}
	// a copy of a locked repository in a directory reads, but does not write
	lr, mem, clk := newLockedRepo(t)
	m := commitTestPoint(t, lr, "vm", clk.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	ctx := context.Background()
	err = mem.List(ctx, "", func(fi storage.FileInfo) error {
		data, err := mem.Load(ctx, fi.Name)
		if err == nil {
			err = be.Save(ctx, fi.Name, data)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := Open(ctx, be, []byte("secret"), Options{Clock: clk})
	if err != nil {
		t.Fatalf("open a copy in a directory: %v", err)
	}
	defer cp.Close()
	if _, err := cp.LoadManifest(ctx, m.ID); err != nil {
		t.Errorf("read the copy: %v", err)
	}
	if _, err := cp.PutChunk(ctx, cp.NewHasher().Sum([]byte("new")), []byte("new")); !errors.Is(err, ErrNoObjectLock) {
		t.Errorf("write to the copy: %v", err)
	}
	for _, bad := range []ObjectLock{{Days: 0, Mode: storage.ModeCompliance}, {Days: 1, Mode: "legal-hold"}, {Days: MaxObjectLockDays + 1, Mode: storage.ModeGovernance}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestObjectLockConfigBytes: a config without Object Lock keeps its exact
// canonical bytes (so its MAC); one with it is covered by the MAC.
func TestObjectLockConfigBytes(t *testing.T) {
	c := Config{Version: 1, ID: "abc", Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ChunkSize: DefaultChunkSize,
		Compression: CompressionFast, Encryption: EncryptionNone}
	b, _ := json.Marshal(c)
	want := `{"version":1,"id":"abc","created":"2026-01-01T00:00:00Z","chunk_size":1048576,"compression":"fast","encryption":"none"}`
	if string(b) != want {
		t.Errorf("canonical bytes changed:\n%s\nwant\n%s", b, want)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	c.ObjectLock = &ObjectLock{Days: 30, Mode: storage.ModeCompliance}
	sealed, err := ParseConfig(sealConfig(key, c))
	if err != nil || sealed.checkMAC(key) != nil || *sealed.ObjectLock != *c.ObjectLock {
		t.Fatalf("sealed locked config: %+v %v", sealed, err)
	}
	sealed.ObjectLock = nil // an attacker drops the lock from the config
	if err := sealed.checkMAC(key); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a config whose lock was removed passed its MAC: %v", err)
	}
}

// TestRecoverUnit: delete markers and an unlocked overwrite are peeled off;
// a file whose only version is unlocked is left alone.
func TestRecoverUnit(t *testing.T) {
	r, be, clk := newLockedRepo(t)
	ctx := context.Background()
	m := commitTestPoint(t, r, "vm", clk.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	id := r.NewHasher().Sum(chunkData(1, MinChunkSize))
	// the attacker: plain deletes and an overwrite
	for _, name := range []string{manifestName(m.ID), chunkName(id), configFile} {
		if err := be.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	_ = be.Remove(ctx, chunkName(id)) // a second marker
	if err := be.Save(ctx, indexName(m.ID, 0), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, "chunks/zz/unlocked", []byte("x")); err != nil {
		t.Fatal(err)
	}
	dry, err := Recover(ctx, be, true)
	if err != nil || len(dry.Points) != 1 || dry.DeleteMarkers != 4 || dry.Overwrites != 1 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if _, err := be.Load(ctx, configFile); err == nil {
		t.Fatal("the dry run changed something")
	}
	res, err := Recover(ctx, be, false)
	if err != nil || len(res.Points) != 1 || res.Points[0] != m.ID || res.Files["chunks"] != 1 || res.Files["indexes"] != 1 || res.Files["config"] != 1 {
		t.Fatalf("recover: %+v %v", res, err)
	}
	r2, err := Open(ctx, be, []byte("secret"), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	vr, err := r2.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil || len(vr.Problems) != 0 || vr.Points != 1 {
		t.Fatalf("verify after recover: %+v %v", vr, err)
	}
	if again, err := Recover(ctx, be, false); err != nil || len(again.Files) != 0 {
		t.Errorf("a second recover: %+v %v", again, err)
	}
}

// TestObjectLockOverwrittenChunk: a chunk someone wrote over without a
// retention counts as absent, so the next backup stores it again (locked,
// on top); an overwritten config stops the commit and points to recover.
func TestObjectLockOverwrittenChunk(t *testing.T) {
	r, be, clk := newLockedRepo(t)
	ctx := context.Background()
	data := chunkData(5, 1000)
	id := putTestChunk(t, r, data)
	if err := be.Save(ctx, chunkName(id), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.TouchChunk(ctx, id); ok || err != nil {
		t.Fatalf("touch of an overwritten chunk: %v %v, want absent", ok, err)
	}
	putTestChunk(t, r, data)
	if until := retentionOf(t, be, chunkName(id)); until.Before(clk.Now().Add(day)) {
		t.Errorf("the chunk stored again is locked until %v", until)
	}
	if got, err := r.GetChunk(ctx, r.NewHasher(), id, nil); err != nil || string(got) != string(data) {
		t.Errorf("chunk after it was stored again: %v", err)
	}
	if err := be.Save(ctx, configFile, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	m := writeTestIndexes(t, r, "vm", clk.Now(), testDisk{MinChunkSize, nil})
	if err := r.CommitPoint(ctx, m); err == nil || !strings.Contains(err.Error(), "repo recover") {
		t.Errorf("commit with an overwritten config: %v", err)
	}
}
