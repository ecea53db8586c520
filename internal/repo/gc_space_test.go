package repo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// TestGCOnFullDisk: gc frees space on a file system that is 100 % full —
// its lock must not need a byte. A real tmpfs, mounted for the test.
func TestGCOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	ctx := context.Background()
	be := storage.NewLocal(filepath.Join(dir, "repo"))
	r, err := Init(ctx, be, []byte("secret"), InitOptions{Encrypted: true, KDF: fastKDF, ChunkSize: MinChunkSize})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := commitTestPoint(t, r, "vm", time.Now(), testDisk{4 * MinChunkSize, map[uint64][]byte{
		0: chunkData(1, MinChunkSize), 1: chunkData(2, MinChunkSize), 2: chunkData(3, MinChunkSize)}})
	if err := r.RemovePoint(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Fill the file system to the last byte.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	var before syscall.Statfs_t
	if err := syscall.Statfs(dir, &before); err != nil || before.Bavail != 0 {
		t.Fatalf("file system not full: %d blocks free, %v", before.Bavail, err)
	}
	res, err := r.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatalf("gc on a full disk: %v", err)
	}
	var after syscall.Statfs_t
	_ = syscall.Statfs(dir, &after)
	if res.Removed != 3 || after.Bavail*uint64(after.Bsize) < 3*MinChunkSize {
		t.Fatalf("gc removed %d chunks, %d bytes free, want 3 chunks freed", res.Removed, after.Bavail*uint64(after.Bsize))
	}
}

// TestGCRemovesEmptyIndexDirs: a forgotten point leaves indexes/<id>/
// empty; gc removes the directory and keeps those of live points.
func TestGCRemovesEmptyIndexDirs(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t, false)
	gone := commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	kept := commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(2, MinChunkSize)}})
	if err := r.RemovePoint(ctx, gone); err != nil {
		t.Fatal(err)
	}
	res, err := r.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.RemovedDirs != 1 || exists(t, be, "indexes/"+gone.ID) || !exists(t, be, indexName(kept.ID, 0)) {
		t.Fatalf("gc %+v: indexes/%s left, or the live point's index gone:\n%s", res, gone.ID, listAll(t, be))
	}
}
