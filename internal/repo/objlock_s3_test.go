package repo

import (
	"context"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/s3"
	"github.com/holdfast-backup/holdfast/internal/testutil/s3test"
)

// TestObjectLockS3: the locking decorator on a real S3 server. The
// repository's clock runs ahead of the server's (time cannot pass on a
// real server, but the future can be asked for): a reuse extends the
// retention there; gc keeps an unreferenced chunk that is still locked and
// says until when.
func TestObjectLockS3(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	tg, err := s3.ParseURL(srv.URL("repo-lock", "p"))
	if err != nil {
		t.Fatal(err)
	}
	be, err := s3.New(tg, s3.Options{Getenv: srv.Getenv, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := be.EnsureBucket(ctx, true); err != nil {
		t.Fatal(err)
	}
	clk := newTestClock(time.Now())
	r, err := Init(ctx, be, []byte("pw"), InitOptions{Encrypted: true, KDF: fastKDF, ChunkSize: MinChunkSize, Clock: clk,
		ObjectLock: &ObjectLock{Days: 1, Mode: storage.ModeGovernance}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := commitTestPoint(t, r, "vm", clk.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	id := r.NewHasher().Sum(chunkData(1, MinChunkSize))
	garbage := putTestChunk(t, r, chunkData(2, 500))

	ret, err := be.Retention(ctx, chunkName(id))
	if err != nil || ret.Mode != storage.ModeGovernance || ret.Until.Before(clk.Now().Add(day*3/2)) {
		t.Fatalf("chunk retention %+v %v", ret, err)
	}
	clk.Advance(day / 2)
	if ok, err := r.TouchChunk(ctx, id); !ok || err != nil {
		t.Fatalf("touch: %v %v", ok, err)
	}
	if ret, err := be.Retention(ctx, chunkName(id)); err != nil || ret.Until.Before(clk.Now().Add(day*3/2)) {
		t.Fatalf("after a reuse with 1 day left: %+v %v, want until %v", ret, err, clk.Now().Add(day*3/2))
	}
	if err := r.RemovePoint(ctx, m); err == nil {
		t.Fatal("a locked point was removed")
	}
	res, err := r.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 0 || res.Locked.Kept != 1 || res.Locked.Until.IsZero() {
		t.Fatalf("gc: %+v", res)
	}
	if _, err := be.Stat(ctx, chunkName(garbage)); err != nil {
		t.Fatalf("the locked garbage chunk: %v", err)
	}
}
