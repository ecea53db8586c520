package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

func needQemu(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"qemu-img", "qemu-nbd", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// qcowDisk backs up a 48-chunk disk (a multiple of 512 bytes) whose chunks
// 0-3 and 10 hold data.
func qcowDisk(t *testing.T) (*repo.Repository, []byte, *repo.Index) {
	t.Helper()
	d := memdisk.Standard(cs)
	data := make([]byte, 48*cs)
	copy(data, d.Data[:4*cs])
	copy(data[10*cs:], d.Data[30*cs:31*cs])
	r := testrepo.New(t, nil)
	ctx := context.Background()
	m, err := BackupPoint(ctx, r, PointRequest{VM: "vm1", Disks: []source.Disk{memdisk.New(data)}, ChunkSize: cs}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := r.LoadIndex(ctx, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	return r, data, ix
}

// qcowContent returns the guest view of a qcow2 image.
func qcowContent(t *testing.T, img string) []byte {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "content.raw")
	run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", img, raw)
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// qcowDataBytes sums the extents qemu-img map reports as data.
func qcowDataBytes(t *testing.T, img string) int64 {
	t.Helper()
	var ext []struct {
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
	}
	if err := json.Unmarshal([]byte(run(t, "qemu-img", "map", "--output=json", "-f", "qcow2", img)), &ext); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ext {
		if e.Data {
			n += e.Length
		}
	}
	return n
}

func restoreQcow2(t *testing.T, r *repo.Repository, ix *repo.Index, img string) {
	t.Helper()
	ctx := context.Background()
	qt, err := OpenTarget(ctx, img, ix.DiskSize, TargetOptions{Format: "qcow2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreDisk(ctx, streamDisk(t, r, ix), qt.RestoreTarget, Options{Workers: 3}); err != nil {
		qt.Abort()
		t.Fatal(err)
	}
	if err := qt.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestQcow2TargetRestore(t *testing.T) {
	needQemu(t)
	r, want, ix := qcowDisk(t)
	img := filepath.Join(t.TempDir(), "out.qcow2")
	restoreQcow2(t, r, ix, img)
	if !bytes.Equal(qcowContent(t, img), want) {
		t.Fatal("restored qcow2 differs from the disk")
	}
	run(t, "qemu-img", "check", "-q", "-f", "qcow2", img)
	if got := qcowDataBytes(t, img); got != 5*cs {
		t.Errorf("qcow2 allocates %d bytes of data, want %d (zero chunks unallocated)", got, 5*cs)
	}
}

func TestQcow2TargetRefusals(t *testing.T) {
	needQemu(t)
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := OpenTarget(ctx, filepath.Join(dir, "odd.qcow2"), 1000, TargetOptions{}); err == nil {
		t.Error("qcow2 of 1000 bytes accepted")
	}
	img := filepath.Join(dir, "a.qcow2")
	qt, err := OpenTarget(ctx, img, 1<<20, TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	qt.Abort()
	if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("aborted qcow2 target left %s behind (%v)", img, err)
	}
	if _, err := OpenExistingQcow2Target(ctx, img, 1<<20); err == nil {
		t.Error("missing qcow2 opened for rollback")
	}
}

func TestQcow2Rollback(t *testing.T) {
	needQemu(t)
	r, want, ix := qcowDisk(t)
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "vm.qcow2")
	restoreQcow2(t, r, ix, img)
	// Touch chunk 1 (data), 20 (zero) and 47 (zero, the last).
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 300k 4k", "-c", "write -P 0x22 5m 64k",
		"-c", "write -P 0x33 12224k 64k", img)
	qt, err := OpenExistingQcow2Target(ctx, img, ix.DiskSize)
	if err != nil {
		t.Fatal(err)
	}
	st, err := RollbackDisk(ctx, streamDisk(t, r, ix), qt, Options{})
	if err != nil {
		qt.Abort()
		t.Fatal(err)
	}
	if err := qt.Close(); err != nil {
		t.Fatal(err)
	}
	if st.ChunksWritten != 3 || st.ChunksZeroed != 2 || st.ChunksCompared != 48 {
		t.Errorf("stats %+v, want 48 compared, 3 written, 2 zeroed", st)
	}
	if !bytes.Equal(qcowContent(t, img), want) {
		t.Fatal("rolled back qcow2 differs from the point")
	}
	run(t, "qemu-img", "check", "-q", "-f", "qcow2", img)
	if _, err := OpenExistingQcow2Target(ctx, img, ix.DiskSize+512); err == nil || !strings.Contains(err.Error(), "virtual size") {
		t.Errorf("size mismatch: %v", err)
	}
}

func TestQcow2RollbackImageInUse(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "busy.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
	// A writer holding the image, as a running VM would.
	holder := exec.Command("qemu-nbd", "-f", "qcow2", "-k", filepath.Join(dir, "holder.sock"), img)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(filepath.Join(dir, "holder.sock")); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err := OpenExistingQcow2Target(context.Background(), img, 1<<20)
	if !errors.Is(err, ErrImageInUse) || !strings.Contains(err.Error(), "VM still running") {
		t.Fatalf("open of a locked image: %v, want ErrImageInUse", err)
	}
}
