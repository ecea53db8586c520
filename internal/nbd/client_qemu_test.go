package nbd

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"testing"
)

// TestQemuNBDRead reads raw and qcow2 images from qemu-nbd over TCP and
// unix sockets and checks the bytes and base:allocation against the file
// and `qemu-img map`.
func TestQemuNBDRead(t *testing.T) {
	needBins(t, "qemu-nbd", "qemu-img")
	dir := t.TempDir()
	raw, want := makeImage(t, dir, 64<<20, testRegions())
	qcow := filepath.Join(dir, "disk.qcow2")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow)
	cases := []struct {
		name, format, file string
		unix               bool
		opts               ClientOptions
	}{
		{"raw-tcp", "raw", raw, false, ClientOptions{}},
		{"raw-unix", "raw", raw, true, ClientOptions{}},
		{"qcow2-tcp", "qcow2", qcow, false, ClientOptions{}},
		{"qcow2-unix", "qcow2", qcow, true, ClientOptions{}},
		{"raw-simple-replies", "raw", raw, false, ClientOptions{DisableStructuredReplies: true}},
		{"raw-export-name", "raw", raw, true, ClientOptions{forceExportName: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := startQemuNBD(t, tc.unix, "-f", tc.format, "-r", tc.file)
			if !tc.opts.DisableStructuredReplies {
				tc.opts.MetaContexts = []string{ContextBaseAllocation}
			}
			c := dialT(t, url, tc.opts)
			if c.Size() != int64(len(want)) || !c.Info().ReadOnly() {
				t.Fatalf("size %d read-only %v", c.Size(), c.Info().ReadOnly())
			}
			if got := readAllChunks(t, c, c.Size(), 3<<20+4097); !bytes.Equal(got, want) {
				t.Fatal("content differs from the image")
			}
			big := make([]byte, 40<<20) // split across requests
			if _, err := c.ReadAtContext(testCtx(t), big, 3<<20); err != nil || !bytes.Equal(big, want[3<<20:43<<20]) {
				t.Fatalf("40 MiB read: %v", err)
			}
			if tc.opts.DisableStructuredReplies {
				return
			}
			ext, err := c.BlockStatus(testCtx(t), ContextBaseAllocation, 0, c.Size())
			if err != nil {
				t.Fatal(err)
			}
			if got, exp := extentsToAlloc(ext), qemuImgMap(t, tc.format, tc.file); !reflect.DeepEqual(got, exp) {
				t.Fatalf("base:allocation\n got %+v\nwant %+v", got, exp)
			}
		})
	}
}

// TestQemuNBDReadPastEnd checks io.ReaderAt semantics at the end.
func TestQemuNBDReadPastEnd(t *testing.T) {
	needBins(t, "qemu-nbd")
	path, want := makeImage(t, t.TempDir(), 1<<20, []region{{1<<20 - 4096, 4096}})
	c := dialT(t, startQemuNBD(t, true, "-f", "raw", "-r", path), ClientOptions{})
	p := make([]byte, 8192)
	n, err := c.ReadAt(p, 1<<20-4096)
	if n != 4096 || err != io.EOF || !bytes.Equal(p[:n], want[1<<20-4096:]) {
		t.Fatalf("read at end: n=%d err=%v", n, err)
	}
	if n, err := c.ReadAt(p, 1<<20); n != 0 || err != io.EOF {
		t.Fatalf("read past end: n=%d err=%v", n, err)
	}
	if _, err := c.WriteAt(p, 0); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("write to read-only export: %v", err)
	}
}

// TestQemuNBDWrite writes, zeroes, trims and flushes through qemu-nbd and
// checks the file afterwards.
func TestQemuNBDWrite(t *testing.T) {
	needBins(t, "qemu-nbd")
	path, want := makeImage(t, t.TempDir(), 8<<20, []region{{0, 8 << 20}})
	c := dialT(t, startQemuNBD(t, false, "-f", "raw", "--discard=unmap", path), ClientOptions{})
	ctx := testCtx(t)
	data := bytes.Repeat([]byte("holdfast"), 64<<10) // 512 KiB
	if _, err := c.WriteAtContext(ctx, data, 1<<20+3); err != nil {
		t.Fatal(err)
	}
	copy(want[1<<20+3:], data)
	if err := c.WriteZeroes(ctx, 4<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	clear(want[4<<20 : 5<<20])
	if err := c.Trim(ctx, 6<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6<<20)
	if _, err := c.ReadAtContext(ctx, got, 0); err != nil || !bytes.Equal(got, want[:6<<20]) {
		t.Fatalf("read back over NBD: %v", err)
	}
	if err := c.WriteZeroes(ctx, 8<<20-512, 1024); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("zeroes beyond end: %v", err)
	}
	c.Close()
	file, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(file[:6<<20], want[:6<<20]) {
		t.Fatalf("file content differs: %v", err)
	}
}

// TestQemuNBD4TiB serves a 4 TiB sparse file and walks its allocation.
func TestQemuNBD4TiB(t *testing.T) {
	needBins(t, "qemu-nbd")
	const size = 4 << 40
	regions := []region{{2 << 40, 1 << 20}, {size - 64<<10, 64 << 10}}
	path := filepath.Join(t.TempDir(), "big.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Skipf("filesystem cannot hold a 4 TiB sparse file: %v", err)
	}
	for i, r := range regions {
		if _, err := f.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, int(r.n)), r.off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	c := dialT(t, startQemuNBD(t, false, "-f", "raw", "-r", path), ClientOptions{MetaContexts: []string{ContextBaseAllocation}})
	if c.Size() != size {
		t.Fatalf("size %d", c.Size())
	}
	alloc, err := c.AllocatedExtents(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	wantAlloc := []Extent{{2 << 40, 1 << 20, 0}, {size - 64<<10, 64 << 10, 0}}
	if !reflect.DeepEqual(alloc, wantAlloc) {
		t.Fatalf("allocated extents %+v, want %+v", alloc, wantAlloc)
	}
	p := make([]byte, 128<<10)
	n, err := c.ReadAt(p, size-128<<10)
	if n != len(p) || err != nil {
		t.Fatalf("read near end: %d %v", n, err)
	}
	if !allZero(p[:64<<10]) || !bytes.Equal(p[64<<10:], bytes.Repeat([]byte{2}, 64<<10)) {
		t.Fatal("wrong data near the end")
	}
}

// TestQemuNBDDirtyBitmap exports a qcow2 with a persistent bitmap through
// qemu-nbd -B and qemu-storage-daemon and checks the dirty extents.
func TestQemuNBDDirtyBitmap(t *testing.T) {
	needBins(t, "qemu-nbd", "qemu-img", "qemu-io")
	dir := t.TempDir()
	img := filepath.Join(dir, "d.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "64M")
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 4M", img)
	run(t, "qemu-img", "bitmap", "--add", img, "bm0")
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x22 1M 64k", "-c", "write -P 0x33 10M 200k", img)
	run(t, "qemu-img", "bitmap", "--disable", img, "bm0")
	bm := ContextDirtyBitmapPrefix + "bm0"
	wantDirty := []Extent{{1 << 20, 64 << 10, StateDirty}, {10 << 20, 256 << 10, StateDirty}}
	check := func(t *testing.T, url string) {
		c := dialT(t, url, ClientOptions{MetaContexts: []string{ContextBaseAllocation, bm}})
		if _, ok := c.MetaContextID(bm); !ok {
			t.Fatalf("context %s not negotiated: %v", bm, c.MetaContexts())
		}
		dirty, err := c.DirtyExtents(testCtx(t), bm)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(dirty, wantDirty) {
			t.Fatalf("dirty %+v, want %+v", dirty, wantDirty)
		}
		alloc, err := c.AllocatedExtents(testCtx(t))
		if err != nil || len(alloc) == 0 || alloc[0].Offset != 0 {
			t.Fatalf("allocated %+v: %v", alloc, err)
		}
		p := make([]byte, 64<<10)
		if _, err := c.ReadAt(p, 1<<20); err != nil || !bytes.Equal(p, bytes.Repeat([]byte{0x22}, 64<<10)) {
			t.Fatalf("read dirty block: %v", err)
		}
		ctxs, err := ListMetaContexts(testCtx(t), url, ClientOptions{})
		if err != nil || !slices.Contains(ctxs, bm) || !slices.Contains(ctxs, ContextBaseAllocation) {
			t.Fatalf("ListMetaContexts %v: %v", ctxs, err)
		}
	}
	t.Run("qemu-nbd", func(t *testing.T) {
		check(t, startQemuNBD(t, false, "-f", "qcow2", "-r", "-B", "bm0", img))
	})
	t.Run("qemu-storage-daemon", func(t *testing.T) {
		needBins(t, "qemu-storage-daemon")
		sock := filepath.Join(t.TempDir(), "qsd.sock")
		startProc(t, "qemu-storage-daemon",
			"--blockdev", "driver=file,filename="+img+",node-name=file0,read-only=on",
			"--blockdev", "driver=qcow2,file=file0,node-name=disk0,read-only=on",
			"--nbd-server", "addr.type=unix,addr.path="+sock,
			"--export", "type=nbd,id=exp0,node-name=disk0,name=snap,writable=off,bitmaps.0=bm0")
		waitListening(t, "unix", sock)
		check(t, "nbd+unix:///snap?socket="+sock)
	})
}

// TestQemuNBDListInfo checks NBD_OPT_LIST and NBD_OPT_INFO against qemu-nbd.
func TestQemuNBDListInfo(t *testing.T) {
	needBins(t, "qemu-nbd")
	path, _ := makeImage(t, t.TempDir(), 3<<20, nil)
	url := startQemuNBD(t, true, "-f", "raw", "-r", "-D", "test disk", path)
	list, err := ListExports(testCtx(t), url, ClientOptions{})
	if err != nil || !reflect.DeepEqual(list, []ExportEntry{{"disk", "test disk"}}) {
		t.Fatalf("ListExports %+v: %v", list, err)
	}
	info, err := GetInfo(testCtx(t), url, ClientOptions{})
	if err != nil || info.Size != 3<<20 || info.Description != "test disk" || !info.ReadOnly() {
		t.Fatalf("GetInfo %+v: %v", info, err)
	}
	bad := url[:len("nbd+unix:///")] + "nope" + url[len("nbd+unix:///disk"):]
	if _, err := Dial(testCtx(t), bad, ClientOptions{}); !errors.Is(err, ErrUnknownExport) {
		t.Fatalf("unknown export: %v", err)
	}
}
