package repo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// mountExt4 makes an ext4 file system in an image file, mounts it through
// a loop device and returns the mount point; it skips without root, the
// tools or loop devices. Cleanup unmounts and detaches only what it made.
func mountExt4(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mount, CAP_LINUX_IMMUTABLE)")
	}
	for _, tool := range []string{"mkfs.ext4", "losetup", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "ext4.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v: %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", loop).Run() })
	if out, err := exec.Command("mount", loop, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount ext4 from %s: %v: %s", loop, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return filepath.Join(mnt, "repo")
}

// TestImmutableAttributeExt4: on ext4, a hardened repository's stored
// chunks carry the immutable attribute — rm fails with EPERM, even as
// root, and a local removal reports ErrImmutable — a backup reusing a
// chunk still touches it, and once the window has passed forget and gc
// clear the attribute and remove what is no longer needed.
func TestImmutableAttributeExt4(t *testing.T) {
	ctx := context.Background()
	be := storage.NewLocal(mountExt4(t))
	clk := newTestClock(time.Now())
	r0, err := Init(ctx, be, []byte("secret"), InitOptions{Encrypted: true, KDF: fastKDF, ChunkSize: MinChunkSize, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer r0.Close()
	if err := be.ProbeImmutable(); err != nil {
		t.Fatalf("ext4 as root: %v", err)
	}
	im := NewImmutable(be, ImmutableOptions{Window: testWindow, Attributes: true, Clock: clk,
		AttrError: func(name string, err error) { t.Errorf("attribute of %s: %v", name, err) }})
	r := r0.WithBackend(im)
	old := commitTestPoint(t, r, "vm1", clk.Now(), testDisk{size: MinChunkSize, chunks: map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	keep := commitTestPoint(t, r, "vm1", clk.Now(), testDisk{size: MinChunkSize, chunks: map[uint64][]byte{0: chunkData(2, MinChunkSize)}})
	ix, err := r.LoadIndex(ctx, old, 0)
	if err != nil {
		t.Fatal(err)
	}
	chunk := chunkName(ix.Entries[0].ID)
	for _, name := range []string{chunk, manifestName(old.ID), indexName(old.ID, 0)} {
		if on, err := be.IsImmutable(name); err != nil || !on {
			t.Fatalf("%s: immutable %v %v", name, on, err)
		}
	}
	out, err := exec.Command("rm", "-f", filePath(be, chunk)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Operation not permitted") {
		t.Fatalf("rm of a stored chunk: %v: %s, want EPERM", err, out)
	}
	if err := be.Remove(ctx, chunk); !errors.Is(err, storage.ErrImmutable) {
		t.Fatalf("local removal of an immutable chunk: %v, want ErrImmutable", err)
	}
	// A backup reusing the chunk touches it: its time moves on, it stays immutable.
	hourAgo := time.Now().Add(-time.Hour)
	if err := be.SetImmutable(chunk, false); err != nil {
		t.Fatal(err)
	}
	setMtime(t, be, chunk, hourAgo)
	if err := be.SetImmutable(chunk, true); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.TouchChunk(ctx, ix.Entries[0].ID); err != nil || !ok {
		t.Fatalf("touch of an immutable chunk: %v %v", ok, err)
	}
	if st, err := be.Stat(ctx, chunk); err != nil || !st.ModTime.After(hourAgo.Add(30*time.Minute)) {
		t.Fatalf("touch of an immutable chunk left its time at %v (%v)", st.ModTime, err)
	}
	if on, _ := be.IsImmutable(chunk); !on {
		t.Fatal("touch left the chunk mutable")
	}
	if err := r.RemovePoint(ctx, old); !errors.Is(err, storage.ErrImmutable) {
		t.Fatalf("forget inside the window: %v", err)
	}

	clk.Advance(testWindow + time.Hour)
	if err := r.RemovePoint(ctx, old); err != nil {
		t.Fatalf("forget after the window: %v", err)
	}
	res, err := r.GC(ctx, GCOptions{})
	if err != nil || res.Removed != 1 {
		t.Fatalf("gc after the window: %+v %v", res, err)
	}
	if exists(t, be, chunk) {
		t.Fatal("gc left the chunk of the forgotten point")
	}
	if vr, err := r.Verify(ctx, VerifyOptions{ReadData: true}); err != nil || vr.Points != 1 || len(vr.Problems) != 0 {
		t.Fatalf("verify (point %s kept): %+v %v", keep.ID, vr, err)
	}
	// Leave nothing immutable behind for the clean-up.
	for _, top := range []string{"chunks", "indexes", "points", "scans"} {
		_ = be.List(ctx, top, func(fi storage.FileInfo) error { return be.SetImmutable(fi.Name, false) })
	}
}
