package pipeline

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
	"golang.org/x/sys/unix"
)

// TestRestoreLeavesZeroBlocksAsHoles: on a fresh file target the 4 KiB
// zero blocks inside data chunks stay holes, as zero chunks do; the file
// still reads back as the disk.
func TestRestoreLeavesZeroBlocksAsHoles(t *testing.T) {
	ctx := context.Background()
	r := testrepo.New(t, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 3*cs+1000)
	for i := range data {
		data[i] = byte(rng.Uint32() | 1)
	}
	// Zero blocks in chunk 0 and 1; chunk 2 is zero but for one byte.
	holes := [][2]int{{2 * holeBlock, 6 * holeBlock}, {10 * holeBlock, 11 * holeBlock},
		{cs - holeBlock, cs + 3*holeBlock}, {2 * cs, 2*cs + 7*holeBlock}, {2*cs + 8*holeBlock, 3 * cs}}
	for _, h := range holes {
		clear(data[h[0]:h[1]])
	}
	data[2*cs+7*holeBlock+100] = 0
	data[2*cs+7*holeBlock+5] = 9
	d := memdisk.New(data)
	m, err := BackupPoint(ctx, r, PointRequest{VM: "vm1", Disks: []source.Disk{d}, ChunkSize: cs}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := r.LoadIndex(ctx, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.img")
	ft, err := OpenTarget(ctx, out, ix.DiskSize, TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := RestoreDisk(ctx, streamDisk(t, r, ix), ft.RestoreTarget, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := ft.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("restored disk differs")
	}
	var zero int64
	for _, h := range holes {
		zero += int64(h[1] - h[0])
	}
	if want := (RestoreStats{BytesWritten: int64(len(data)) - zero, BytesZero: zero, Chunks: 4}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if h, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE); err != nil || h == int64(len(data)) {
		t.Skipf("the file system of %s reports no holes (SEEK_HOLE: %d, %v)", out, h, err)
	}
	for _, h := range holes {
		next, err := unix.Seek(int(f.Fd()), int64(h[0]), unix.SEEK_DATA)
		if err != nil || next < int64(h[1]) {
			t.Errorf("zero blocks [%d, %d): data found at %d (%v), want a hole", h[0], h[1], next, err)
		}
	}
	var sb unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &sb); err != nil {
		t.Fatal(err)
	}
	// The tail's block, and room for the file system's extent blocks.
	if limit := int64(len(data)) - zero + 4*holeBlock; sb.Blocks*512 > limit {
		t.Errorf("restored file allocates %d bytes, want at most %d", sb.Blocks*512, limit)
	}
}

func TestDataRuns(t *testing.T) {
	blk := func(fill ...byte) []byte { // one holeBlock per argument
		var b []byte
		for _, c := range fill {
			b = append(b, bytes.Repeat([]byte{c}, holeBlock)...)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		off  int64
		want [][2]int
	}{
		{"all data", blk(1, 1, 1), 0, [][2]int{{0, 3 * holeBlock}}},
		{"all zero", blk(0, 0), 0, nil},
		{"runs", blk(1, 0, 0, 1, 1, 0, 1), 0, [][2]int{{0, holeBlock}, {3 * holeBlock, 5 * holeBlock}, {6 * holeBlock, 7 * holeBlock}}},
		{"short tail", append(blk(0), 0, 0, 7), 0, [][2]int{{holeBlock, holeBlock + 3}}},
		{"unaligned start", append(make([]byte, 100), blk(0, 1)...), holeBlock - 100, [][2]int{{100 + holeBlock, 100 + 2*holeBlock}}},
		{"one byte", func() []byte { b := blk(0, 0, 0); b[holeBlock+holeBlock/2] = 1; return b }(), 0, [][2]int{{holeBlock, 2 * holeBlock}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][2]int
			for lo, hi := range dataRuns(tt.data, tt.off) {
				got = append(got, [2]int{lo, hi})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("runs %v, want %v", got, tt.want)
			}
		})
	}
}
