package fsmap

import (
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/guestdisk"
)

// patched overlays bytes on a real image: the fuzzer mutates a file
// system's metadata while the rest stays a real file system.
type patched struct {
	base    io.ReaderAt
	regions []region
	data    []byte
}

// region is a stretch of metadata the fuzz input overwrites, in order.
type region struct{ off, n int64 }

func (p patched) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.base.ReadAt(b, off)
	pos := int64(0)
	for _, r := range p.regions {
		for i := int64(0); i < r.n && pos < int64(len(p.data)); i, pos = i+1, pos+1 {
			if o := r.off + i - off; o >= 0 && o < int64(n) {
				b[o] = p.data[pos]
			}
		}
	}
	return n, err
}

// seed reads the regions' current bytes.
func seed(t testing.TB, r io.ReaderAt, regions []region) []byte {
	var s []byte
	for _, rg := range regions {
		b := make([]byte, rg.n)
		if _, err := r.ReadAt(b, rg.off); err != nil {
			t.Fatal(err)
		}
		s = append(s, b...)
	}
	return s
}

func checkRanges(t *testing.T, rs []Range, size int64) {
	for _, r := range rs {
		if r.Offset < 0 || r.Length <= 0 || r.End() > size {
			t.Fatalf("range %+v outside a volume of %d bytes", r, size)
		}
	}
}

// FuzzExt4Free mutates the superblock, the group descriptors and the
// first block bitmaps of a real ext4 image: the free-space reader and the
// excluded-files reader may refuse, never panic, and never return a range
// outside the volume.
func FuzzExt4Free(f *testing.F) {
	img := extImage(f, 32, "mkfs.ext4 -b 1024", "f1")
	file, size := openImage(f, img)
	regions := []region{{1024, 1024}, {2048, 1024}, {258 * 1024, 64}, {260 * 1024, 64}}
	f.Add(seed(f, file, regions))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := patched{file, regions, data}
		rs, err := ext4Free(context.Background(), r, size)
		if err == nil {
			checkRanges(t, rs, size)
		}
		rs, err = fileRanges(context.Background(), r, guestdisk.Volume{Size: size, Content: guestdisk.ContentExt},
			Options{Paths: []string{"/"}, Swap: true})
		if err == nil {
			checkRanges(t, rs, size)
		}
	})
}

// FuzzXFSFree mutates the superblock, AGF 0, the bnobt root of AG 0 and
// the head of the log of a real xfs image.
func FuzzXFSFree(f *testing.F) {
	img := xfsImage(f, 320, "")
	file, size := openImage(f, img)
	sb := make([]byte, 512)
	if _, err := file.ReadAt(sb, 0); err != nil {
		f.Fatal(err)
	}
	be := binary.BigEndian
	bs, agblocks, agblklog := int64(be.Uint32(sb[4:])), int64(be.Uint32(sb[84:])), sb[124]
	logstart := int64(be.Uint64(sb[48:]))
	logOff := ((logstart>>agblklog)*agblocks + logstart&(1<<agblklog-1)) * bs
	agf := make([]byte, 512)
	if _, err := file.ReadAt(agf, 512); err != nil {
		f.Fatal(err)
	}
	bnoRoot := int64(be.Uint32(agf[16:]))
	regions := []region{{0, 256}, {512, 224}, {bnoRoot * bs, 128}, {logOff, 1024}}
	f.Add(seed(f, file, regions))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := patched{file, regions, data}
		rs, err := xfsFree(context.Background(), r, size)
		if err == nil {
			checkRanges(t, rs, size)
		}
		rs, err = fileRanges(context.Background(), r, guestdisk.Volume{Size: size, Content: guestdisk.ContentXFS},
			Options{Paths: []string{"/"}, Swap: true})
		if err == nil {
			checkRanges(t, rs, size)
		}
	})
}
