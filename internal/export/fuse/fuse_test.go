package fuse

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// memDisk is a Disk in memory; reads at or past failAt fail.
type memDisk struct {
	data   []byte
	failAt int64
}

func (m *memDisk) Size() int64 { return int64(len(m.data)) }

func (m *memDisk) ReadAtContext(_ context.Context, p []byte, off int64) (int, error) {
	if m.failAt > 0 && off+int64(len(p)) > m.failAt {
		return 0, errors.New("chunk 7 of disk 1: missing")
	}
	if off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func needFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse")
	}
}

func mountT(t *testing.T, disks ...Disk) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Mount(dir, disks, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return dir
}

func TestServesDisksReadOnly(t *testing.T) {
	needFUSE(t)
	a := make([]byte, 5<<20+123) // not a multiple of any page or request size
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range a {
		a[i] = byte(rnd.Uint32())
	}
	b := bytes.Repeat([]byte("disk one\n"), 1000)
	dir := mountT(t, &memDisk{data: a}, &memDisk{data: b})

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Name() != "disk0.img" || entries[1].Name() != "disk1.img" {
		t.Fatalf("entries: %v", entries)
	}
	for name, want := range map[string][]byte{"disk0.img": a, "disk1.img": b} {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != int64(len(want)) || st.Mode().Perm() != 0o444 {
			t.Errorf("%s: size %d mode %v, want %d 0444", name, st.Size(), st.Mode(), len(want))
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs", name)
		}
		// A read across the end returns the bytes there are.
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		tail := make([]byte, 4096)
		n, err := f.ReadAt(tail, int64(len(want))-100)
		f.Close()
		if n != 100 || !errors.Is(err, io.EOF) || !bytes.Equal(tail[:n], want[len(want)-100:]) {
			t.Errorf("%s: read across the end: %d %v", name, n, err)
		}
	}
	p := filepath.Join(dir, "disk0.img")
	for _, flag := range []int{os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC} {
		if f, err := os.OpenFile(p, flag, 0); !errors.Is(err, syscall.EROFS) {
			if f != nil {
				f.Close()
			}
			t.Errorf("open flag %#x: %v, want EROFS", flag, err)
		}
	}
	if err := os.Truncate(p, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("truncate: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create: %v, want EROFS", err)
	}
}

func TestReadErrorIsEIO(t *testing.T) {
	needFUSE(t)
	d := &memDisk{data: make([]byte, 4<<20), failAt: 2 << 20}
	dir := mountT(t, d)
	f, err := os.Open(filepath.Join(dir, "disk0.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatalf("read before the damage: %v", err)
	}
	if _, err := f.ReadAt(buf, 3<<20); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of a damaged range: %v, want EIO", err)
	}
}

func TestMountOptions(t *testing.T) {
	needFUSE(t)
	dir := mountT(t, &memDisk{data: make([]byte, 1<<20)})
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 6 || string(f[4]) != dir {
			continue
		}
		opts := string(f[5])
		for _, want := range []string{"ro", "nosuid", "nodev", "noexec"} {
			if !bytes.Contains([]byte(","+opts+","), []byte(","+want+",")) {
				t.Errorf("mount options %q lack %s", opts, want)
			}
		}
		if !bytes.Contains(line, []byte("max_read=1048576")) {
			t.Errorf("mount %q: max_read is not 1 MiB", line)
		}
		return
	}
	t.Fatalf("%s not in mountinfo", dir)
}
