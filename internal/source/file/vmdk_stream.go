package file

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// streamOptimized sparse extents ("Virtual Disk Format 1.1", section
// "Stream-Optimized Compressed Sparse Extents"): every grain is stored
// deflated (RFC 1950 zlib streams) behind a grain marker, and the metadata
// is framed by markers:
//
//	grain marker   u64 LBA (first sector of the grain) | u32 compressed size | data, padded to a sector
//	meta marker    u64 sectors that follow | u32 0 | u32 type | padding to a sector
//
// Marker types: 0 end of stream, 1 grain table, 2 grain directory, 3 footer.
// Grain table entries hold the sector of a grain's marker. VMware writes
// the grain directory after the grains and sets the header's gdOffset to
// GD_AT_END; the real header is then the footer, a copy of the header
// with the directory's offset, in the sector before the end-of-stream
// marker at the end of the file. qemu-img keeps the directory in the
// header instead; both are read.
const (
	streamMaxGrain       = 2048 // sectors (1 MiB): bounds the memory of one read
	grainMarkerSize      = 12
	markerEndOfStream    = 0
	markerFooter         = 3
	streamFooterSections = 3 // footer marker, footer, end-of-stream marker
)

// readFooter reads the header copy at the end of a streamOptimized extent
// whose header puts the grain directory at the end.
func readFooter(ra io.ReaderAt, fileSize int64) (sparseHeader, error) {
	const tail = streamFooterSections * sectorSize
	if fileSize < sparseHeaderSize+tail {
		return sparseHeader{}, errors.New("grain directory at the end of a file too short for a footer")
	}
	buf := make([]byte, tail)
	if _, err := ra.ReadAt(buf, fileSize-tail); err != nil {
		return sparseHeader{}, fmt.Errorf("read footer: %w", err)
	}
	le := binary.LittleEndian
	footerMarker, eos := buf[:sectorSize], buf[2*sectorSize:]
	if le.Uint32(footerMarker[8:]) != 0 || le.Uint32(footerMarker[12:]) != markerFooter ||
		le.Uint64(eos) != 0 || le.Uint32(eos[8:]) != 0 || le.Uint32(eos[12:]) != markerEndOfStream {
		return sparseHeader{}, errors.New("grain directory at the end but no footer and end-of-stream marker at the end of the file")
	}
	h, err := parseSparseHeader(buf[sectorSize : 2*sectorSize])
	if err != nil {
		return h, fmt.Errorf("footer: %w", err)
	}
	if h.gdOffset == sparseGDAtEnd {
		return h, errors.New("footer: grain directory at the end again")
	}
	return h, nil
}

// grainInflater decompresses grains of one extent, reusing zlib readers
// and buffers; it is safe for concurrent use.
type grainInflater struct {
	grainBytes int64
	pool       sync.Pool // *inflateState
}

type inflateState struct {
	zr         io.ReadCloser // nil until first use; implements zlib.Resetter
	src        bytes.Reader
	compressed []byte
	grain      []byte
}

func newGrainInflater(grainBytes int64) *grainInflater {
	return &grainInflater{grainBytes: grainBytes}
}

// maxCompressed bounds a grain's compressed size: deflate expands
// incompressible data by a few bytes per 16 KiB block, far less than this.
func (gi *grainInflater) maxCompressed() int64 { return 2*gi.grainBytes + 1024 }

func (gi *grainInflater) get() *inflateState {
	if st, ok := gi.pool.Get().(*inflateState); ok {
		return st
	}
	return &inflateState{}
}

// readCompressedGrain fills p from offset in of grain g, whose marker is at
// sector.
func (e *sparseExtent) readCompressedGrain(p []byte, g int64, sector uint32, in int64) error {
	gi := e.stream
	pos := int64(sector) * sectorSize
	if pos > e.fileSize-grainMarkerSize {
		return fmt.Errorf("grain marker at sector %d beyond end of file", sector)
	}
	var hdr [grainMarkerSize]byte
	if _, err := e.ra.ReadAt(hdr[:], pos); err != nil {
		return fmt.Errorf("read grain marker at sector %d: %w", sector, err)
	}
	lba, size := binary.LittleEndian.Uint64(hdr[:]), int64(binary.LittleEndian.Uint32(hdr[8:]))
	switch wantLBA := uint64(g) * uint64(e.grainBytes/sectorSize); {
	case size == 0:
		return fmt.Errorf("grain table points at a metadata marker (sector %d), not a grain", sector)
	case lba != wantLBA:
		return fmt.Errorf("grain marker at sector %d is for sector %d, want %d", sector, lba, wantLBA)
	case size > gi.maxCompressed() || size > e.fileSize-pos-grainMarkerSize:
		return fmt.Errorf("compressed grain of %d bytes at sector %d too large or beyond end of file", size, sector)
	}
	st := gi.get()
	defer gi.pool.Put(st)
	if int64(cap(st.compressed)) < size {
		st.compressed = make([]byte, size)
	}
	src := st.compressed[:size]
	if n, err := e.ra.ReadAt(src, pos+grainMarkerSize); n < len(src) {
		return fmt.Errorf("read compressed grain at sector %d: %w", sector, shortRead(err))
	}
	dst, direct := p, in == 0 && int64(len(p)) == gi.grainBytes // a whole grain inflates straight into p
	if !direct {
		if st.grain == nil {
			st.grain = make([]byte, gi.grainBytes)
		}
		dst = st.grain
	}
	n, err := st.inflate(src, dst)
	if err != nil {
		return fmt.Errorf("compressed grain at sector %d: %w", sector, err)
	}
	if int64(n) < in+int64(len(p)) {
		return fmt.Errorf("compressed grain at sector %d holds %d bytes, the read needs %d", sector, n, in+int64(len(p)))
	}
	if !direct {
		copy(p, dst[in:])
	}
	return nil
}

// inflate decompresses one zlib stream into dst and returns its length; a
// stream longer than dst, truncated or failing its checksum is an error.
func (st *inflateState) inflate(src, dst []byte) (int, error) {
	st.src.Reset(src)
	if st.zr == nil {
		zr, err := zlib.NewReader(&st.src)
		if err != nil {
			return 0, fmt.Errorf("inflate: %w", err)
		}
		st.zr = zr
	} else if err := st.zr.(zlib.Resetter).Reset(&st.src, nil); err != nil {
		return 0, fmt.Errorf("inflate: %w", err)
	}
	n := 0
	for n < len(dst) {
		m, err := st.zr.Read(dst[n:])
		n += m
		switch {
		case errors.Is(err, io.EOF):
			return n, nil // a short last grain; zlib verified the checksum
		case err != nil:
			return n, fmt.Errorf("inflate: %w", err)
		case m == 0:
			return n, errors.New("inflate: no progress")
		}
	}
	var one [1]byte // dst is full: the stream must end here
	if m, err := st.zr.Read(one[:]); m != 0 || !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("more data than a grain")
		}
		return n, fmt.Errorf("inflate: %w", err)
	}
	return n, nil
}

// shortRead names the error of a read that returned less than asked.
func shortRead(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
