package guestfs

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// countingReader counts the reads made through it.
type countingReader struct {
	r     *os.File
	reads atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	return c.r.ReadAt(p, off)
}

// hostileExt4 makes a real 8 MiB ext4 (4 KiB blocks, mkfsOpts added) with
// one file /f, runs the debugfs requests on it, then writes each block
// given (by block number) into the image.
func hostileExt4(t *testing.T, mkfsOpts []string, requests []string, blocks map[int64][]uint32) string {
	t.Helper()
	guesttree.Tool(t, "debugfs")
	src := t.TempDir()
	if err := os.WriteFile(src+"/f", make([]byte, 20<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	img := guesttree.Ext4(t, src, 8, mkfsOpts...)
	for _, r := range requests {
		guesttree.Run(t, nil, "debugfs", "-w", "-R", r, img)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for n, words := range blocks {
		b := make([]byte, 4096)
		for i := range b[:len(b)/4] {
			w := words[i%len(words)]
			b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24)
		}
		if _, err := f.WriteAt(b, n*4096); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func openCounting(t *testing.T, img string) (*FS, *countingReader) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	st, _ := f.Stat()
	c := &countingReader{r: f}
	fsys, err := Open(c, st.Size(), "ext4")
	if err != nil {
		t.Fatal(err)
	}
	return fsys, c
}

// An ext2/3 block map that names one small indirect block at every slot of
// every level (a 1 TiB sparse file in a volume of 8 MiB) made the reader
// read 2^18 blocks and visit 2^28 pointers for one inode; one that is only
// deep past its file's size is not walked past the size.
func TestExt4BlockMapBomb(t *testing.T) {
	const b1, b2, zero = 2045, 2046, 2047 // free blocks at the end of the volume
	noExtents := []string{"-O", "^extent,^has_journal,^64bit"}
	cases := []struct {
		name     string
		size     int64
		wantErr  bool
		maxReads int64
	}{
		// b1 → b2 ×1024 → zero ×1024: 2^20 indirect blocks of holes
		{"sparse 1 TiB, one indirect block named everywhere", 1 << 40, true, 50},
		// the same tree under a file of 13 blocks: only what the size covers is read
		{"small size, large tree", 13 * 4096, false, 50},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := hostileExt4(t, noExtents, []string{
				fmt.Sprintf("sif /f size %d", c.size),
				fmt.Sprintf("sif /f block[IND] %d", b2),
				fmt.Sprintf("sif /f block[DIND] %d", b1),
				fmt.Sprintf("sif /f block[TIND] %d", b1),
			}, map[int64][]uint32{b1: {b2}, b2: {zero}, zero: {0}})
			fsys, c2 := openCounting(t, img)
			before := c2.reads.Load()
			_, err := fsys.Extents("f")
			reads := c2.reads.Load() - before
			if c.wantErr != errors.Is(err, ErrCorrupt) {
				t.Fatalf("extents: %v (want damage: %v)", err, c.wantErr)
			}
			if reads > c.maxReads {
				t.Fatalf("%d reads for one inode (at most %d)", reads, c.maxReads)
			}
			t.Logf("%d reads: %v", reads, err)
		})
	}
}

// Four extents in the inode, each the whole volume, make one file of four
// volumes' data: the file is refused as damaged rather than written 4×.
func TestExt4ExtentsBeyondVolume(t *testing.T) {
	const blocks = 2040 // of the 2048 in the volume, from block 1
	req := []string{fmt.Sprintf("sif /f size %d", 4*blocks*4096),
		"sif /f block[0] 0x0004F30A", "sif /f block[1] 4", "sif /f block[2] 0"}
	slot := func(i int) string { // debugfs names i_block's last three words
		if i >= 12 {
			return []string{"IND", "DIND", "TIND"}[i-12]
		}
		return fmt.Sprint(i)
	}
	for i := range 4 { // logical block, length (start_hi 0), start_lo
		req = append(req, fmt.Sprintf("sif /f block[%s] %d", slot(3+3*i), i*blocks),
			fmt.Sprintf("sif /f block[%s] %d", slot(4+3*i), blocks),
			fmt.Sprintf("sif /f block[%s] 1", slot(5+3*i)))
	}
	img := hostileExt4(t, nil, req, nil)
	fsys, _ := openCounting(t, img)
	_, err := fsys.Extents("f")
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("extents of a file of 4 volumes: %v", err)
	}
	t.Log(err)
}
