package vsphererestore

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/holdfast-backup/holdfast/internal/restorefs"
)

// A hosted sparse extent (VMware "Virtual Disk Format 1.1",
// monolithicSparse) streamed with a known length: header, embedded
// descriptor, grain directory, the grain tables that map data, then the
// data grains in disk order. Grains of zero chunks are left out (their
// table entry, or the whole table, is 0 and reads as zeros).
const (
	grainSectors  = 128 // 64 KiB grains
	grainBytes    = grainSectors * sectorSize
	gtEntries     = 512 // entries per grain table: 32 MiB of disk
	gtSectors     = gtEntries * 4 / sectorSize
	descSectors   = 20
	sparseVersion = 1
	flagNewline   = 1 // the header's newline detection characters are valid
)

// allocator is a disk that knows where its zero chunks are
// (restorefs.Disk).
type allocator interface {
	Allocated(off, length int64) []restorefs.Extent
}

// sparseImage is the layout of one disk's sparse extent.
type sparseImage struct {
	disk     Disk
	size     int64
	data     []restorefs.Extent // grain-aligned data extents, sorted
	gtGrains []int64            // data grains per grain table
	gd       []uint32           // grain table sectors, 0: no table
	grainOff int64              // first grain's sector
	grains   int64              // data grains
	desc     []byte
}

// newSparseImage lays out disk d as a sparse extent with descriptor desc.
func newSparseImage(d Disk, desc []byte) (*sparseImage, error) {
	if len(desc) > descSectors*sectorSize {
		return nil, fmt.Errorf("descriptor of %d bytes does not fit the sparse header's %d", len(desc), descSectors*sectorSize)
	}
	s := &sparseImage{disk: d, size: d.Size(), desc: desc}
	capSectors := (s.size + sectorSize - 1) / sectorSize
	tables := (capSectors + gtEntries*grainSectors - 1) / (gtEntries * grainSectors)
	s.gtGrains = make([]int64, tables)
	s.gd = make([]uint32, tables)
	ext := []restorefs.Extent{{Offset: 0, Length: s.size}}
	if a, ok := d.(allocator); ok {
		ext = a.Allocated(0, s.size)
	}
	for _, e := range ext {
		if e.Zero {
			continue
		}
		lo := e.Offset / grainBytes * grainBytes
		hi := (e.End() + grainBytes - 1) / grainBytes * grainBytes
		if k := len(s.data) - 1; k >= 0 && s.data[k].End() >= lo {
			s.data[k].Length = max(s.data[k].End(), hi) - s.data[k].Offset
			continue
		}
		s.data = append(s.data, restorefs.Extent{Offset: lo, Length: hi - lo})
	}
	for _, e := range s.data {
		for g := e.Offset / grainBytes; g < e.End()/grainBytes; g++ {
			s.gtGrains[g/gtEntries]++
			s.grains++
		}
	}
	gdOff := int64(1 + descSectors)
	gdSectors := (tables*4 + sectorSize - 1) / sectorSize
	next := gdOff + gdSectors
	for i, n := range s.gtGrains {
		if n > 0 {
			if next > 0xffffffff {
				return nil, fmt.Errorf("disk of %d bytes too large for a sparse extent", s.size)
			}
			s.gd[i] = uint32(next)
			next += gtSectors
		}
	}
	s.grainOff = (next + grainSectors - 1) / grainSectors * grainSectors
	if s.grainOff+s.grains*grainSectors > 0xffffffff {
		return nil, fmt.Errorf("disk of %d bytes too large for a sparse extent", s.size)
	}
	return s, nil
}

// Len is the extent file's size in bytes.
func (s *sparseImage) Len() int64 { return (s.grainOff + s.grains*grainSectors) * sectorSize }

// header is the SparseExtentHeader, the descriptor and the grain
// directory, padded to where the grain tables start.
func (s *sparseImage) header() []byte {
	gdOff := uint64(1 + descSectors)
	b := make([]byte, int(gdOff)*sectorSize+len(s.gd)*4)
	le := binary.LittleEndian
	copy(b, "KDMV")
	le.PutUint32(b[4:], sparseVersion)
	le.PutUint32(b[8:], flagNewline)
	le.PutUint64(b[12:], uint64((s.size+sectorSize-1)/sectorSize))
	le.PutUint64(b[20:], grainSectors)
	le.PutUint64(b[28:], 1)
	le.PutUint64(b[36:], descSectors)
	le.PutUint32(b[44:], gtEntries)
	le.PutUint64(b[56:], gdOff)
	le.PutUint64(b[64:], uint64(s.grainOff))
	copy(b[73:], "\n \r\n")
	copy(b[sectorSize:], s.desc)
	for i, sec := range s.gd {
		le.PutUint32(b[int(gdOff)*sectorSize+4*i:], sec)
	}
	return b
}

// WriteTo streams the extent: exactly Len() bytes.
func (s *sparseImage) WriteTo(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	head := s.header()
	firstGT := int64(len(head)+sectorSize-1) / sectorSize * sectorSize
	head = append(head, make([]byte, firstGT-int64(len(head)))...)
	if _, err := bw.Write(head); err != nil {
		return err
	}
	if err := s.writeTables(bw); err != nil {
		return err
	}
	if err := s.writeGrains(ctx, bw); err != nil {
		return err
	}
	return bw.Flush()
}

// writeTables writes the grain tables that map data, in directory order,
// and pads to the first grain.
func (s *sparseImage) writeTables(w io.Writer) error {
	gt := make([]byte, gtSectors*sectorSize)
	next := uint32(s.grainOff)
	di := 0 // first data extent that may reach the table
	for t, n := range s.gtGrains {
		if n == 0 {
			continue
		}
		clear(gt)
		lo, hi := int64(t)*gtEntries, int64(t+1)*gtEntries // grains
		for di < len(s.data) && s.data[di].End()/grainBytes <= lo {
			di++ // extents that end before this table
		}
		for k := di; k < len(s.data) && s.data[k].Offset/grainBytes < hi; k++ {
			for g := max(lo, s.data[k].Offset/grainBytes); g < min(hi, s.data[k].End()/grainBytes); g++ {
				binary.LittleEndian.PutUint32(gt[4*(g-lo):], next)
				next += grainSectors
			}
		}
		if _, err := w.Write(gt); err != nil {
			return err
		}
	}
	var end int64
	for _, sec := range s.gd {
		if sec != 0 {
			end = int64(sec) + gtSectors
		}
	}
	if end == 0 {
		end = 1 + descSectors + (int64(len(s.gd))*4+sectorSize-1)/sectorSize
	}
	_, err := w.Write(make([]byte, (s.grainOff-end)*sectorSize))
	return err
}

// writeGrains writes the data grains in disk order; the last grain is
// padded with zeros past the disk's end.
func (s *sparseImage) writeGrains(ctx context.Context, w io.Writer) error {
	buf := make([]byte, 1<<20)
	for _, e := range s.data {
		for off := e.Offset; off < e.End(); {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(int64(len(buf)), e.End()-off)
			p := buf[:n]
			clear(p)
			if r := min(n, s.size-off); r > 0 {
				if got, err := s.disk.ReadAt(p[:r], off); int64(got) < r {
					return fmt.Errorf("read the point at %d: %d of %d bytes: %v", off, got, r, err)
				}
			}
			if _, err := w.Write(p); err != nil {
				return err
			}
			off += n
		}
	}
	return nil
}

// reader streams the extent through a pipe.
func (s *sparseImage) reader(ctx context.Context) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.WriteTo(ctx, pw)) }()
	return pr
}
