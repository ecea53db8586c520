package file

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// Hosted sparse extent ("Virtual Disk Format 1.1", SparseExtentHeader).
const (
	sparseHeaderSize    = 512
	sparseMaxGTEs       = 512     // entries per grain table, as qemu
	sparseMaxGrain      = 1 << 21 // sectors (1 GiB)
	sparseMaxGDEntries  = 1 << 24 // 64 MiB of grain directory
	sparseMaxDescriptor = maxDescriptorSize / sectorSize
	sparseGDAtEnd       = ^uint64(0) // streamOptimized: directory in the footer

	sparseFlagCompressed = 1 << 16
	sparseFlagMarkers    = 1 << 17
	compressDeflate      = 1

	// Grain table entry values that are not file offsets.
	gteUnallocated = 0
	gteZeroed      = 1
)

// sparseHeader holds the SparseExtentHeader fields this package uses; sizes
// and offsets are in sectors.
type sparseHeader struct {
	version, flags       uint32
	capacity, grainSize  uint64
	descOffset, descSize uint64
	gtesPerGT            uint32
	gdOffset             uint64
	compressAlgorithm    uint16
}

func parseSparseHeader(b []byte) (sparseHeader, error) {
	var h sparseHeader
	if len(b) < sparseHeaderSize || string(b[:4]) != vmdkSparseMagic {
		return h, errors.New("not a VMDK sparse extent header")
	}
	le := binary.LittleEndian
	h.version = le.Uint32(b[4:])
	h.flags = le.Uint32(b[8:])
	h.capacity = le.Uint64(b[12:])
	h.grainSize = le.Uint64(b[20:])
	h.descOffset = le.Uint64(b[28:])
	h.descSize = le.Uint64(b[36:])
	h.gtesPerGT = le.Uint32(b[44:])
	h.gdOffset = le.Uint64(b[56:])
	h.compressAlgorithm = le.Uint16(b[77:])
	return h, nil
}

func (h *sparseHeader) validate(fileSize int64) error {
	fileSectors := uint64(fileSize) / sectorSize
	switch {
	case h.version < 1 || h.version > 3:
		return fmt.Errorf("unsupported sparse extent version %d", h.version)
	case h.gdOffset == sparseGDAtEnd:
		return errors.New("grain directory at the end but no footer")
	case h.capacity > uint64(maxSectors):
		return fmt.Errorf("capacity of %d sectors too large", h.capacity)
	case h.grainSize == 0 || h.grainSize > sparseMaxGrain || h.grainSize&(h.grainSize-1) != 0:
		return fmt.Errorf("invalid grain size of %d sectors", h.grainSize)
	case h.gtesPerGT == 0 || h.gtesPerGT > sparseMaxGTEs:
		return fmt.Errorf("invalid number of grain table entries %d", h.gtesPerGT)
	case h.gdOffset == 0 || h.gdOffset > fileSectors:
		return fmt.Errorf("grain directory at sector %d outside a file of %d sectors", h.gdOffset, fileSectors)
	case h.descSize > sparseMaxDescriptor || h.descSize > fileSectors ||
		(h.descSize > 0 && (h.descOffset == 0 || h.descOffset > fileSectors-h.descSize)):
		return fmt.Errorf("invalid embedded descriptor (sector %d, %d sectors)", h.descOffset, h.descSize)
	}
	if err := h.validateCompression(); err != nil {
		return err
	}
	if n := h.gdEntries(); n > sparseMaxGDEntries || n*4 > uint64(fileSize)-h.gdOffset*sectorSize {
		return fmt.Errorf("grain directory of %d entries does not fit in the file", n)
	}
	return nil
}

// validateCompression checks the streamOptimized fields: deflate needs the
// compressed and markers flags, and grains small enough to inflate in memory.
func (h *sparseHeader) validateCompression() error {
	switch {
	case h.compressAlgorithm > compressDeflate:
		return fmt.Errorf("unsupported grain compression algorithm %d", h.compressAlgorithm)
	case (h.flags&sparseFlagCompressed != 0) != h.compressed() || (h.flags&sparseFlagMarkers != 0) != h.compressed():
		return fmt.Errorf("unsupported combination of compression algorithm %d and flags %#x (compressed grains need markers)", h.compressAlgorithm, h.flags)
	case h.compressed() && h.grainSize > streamMaxGrain:
		return fmt.Errorf("compressed grains of %d sectors too large (at most %d)", h.grainSize, streamMaxGrain)
	}
	return nil
}

// compressed says whether grains are stored deflated behind grain markers
// (streamOptimized).
func (h *sparseHeader) compressed() bool { return h.compressAlgorithm == compressDeflate }

// gdEntries is the number of grain tables that map the capacity.
func (h *sparseHeader) gdEntries() uint64 {
	span := uint64(h.gtesPerGT) * h.grainSize // <= 2^30 sectors
	return (h.capacity + span - 1) / span
}

// sparseExtent reads a hosted sparse extent: a grain directory of grain
// tables of grain offsets. Grain tables are read on demand through a small
// cache, so ReadAt is safe for concurrent use.
type sparseExtent struct {
	ra         io.ReaderAt
	name       string
	fileSize   int64
	capacity   int64 // bytes
	grainBytes int64
	gtEntries  int64
	gd         []uint32 // grain table sectors, 0 = no table
	cache      gtCache
	// stream is set for compressed grains (streamOptimized).
	stream *grainInflater
}

// openSparseExtent reads and validates the header and grain directory of a
// sparse extent and returns its embedded descriptor, if any.
func openSparseExtent(ra io.ReaderAt, name string, fileSize int64) (*sparseExtent, *vmdkDescriptor, error) {
	buf := make([]byte, sparseHeaderSize)
	if _, err := ra.ReadAt(buf, 0); err != nil {
		return nil, nil, fmt.Errorf("vmdk %s: read header: %w", name, err)
	}
	h, err := parseSparseHeader(buf)
	if err == nil && h.gdOffset == sparseGDAtEnd && h.flags&sparseFlagMarkers != 0 {
		h, err = readFooter(ra, fileSize)
	}
	if err == nil {
		err = h.validate(fileSize)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("vmdk %s: %w", name, err)
	}
	e := &sparseExtent{
		ra: ra, name: name, fileSize: fileSize,
		capacity:   int64(h.capacity) * sectorSize,
		grainBytes: int64(h.grainSize) * sectorSize,
		gtEntries:  int64(h.gtesPerGT),
	}
	if h.compressed() {
		e.stream = newGrainInflater(e.grainBytes)
	}
	if e.gd, err = e.readGrainDirectory(&h); err != nil {
		return nil, nil, fmt.Errorf("vmdk %s: %w", name, err)
	}
	desc, err := readEmbeddedDescriptor(ra, &h)
	if err != nil {
		return nil, nil, fmt.Errorf("vmdk %s: embedded descriptor: %w", name, err)
	}
	return e, desc, nil
}

func (e *sparseExtent) readGrainDirectory(h *sparseHeader) ([]uint32, error) {
	buf := make([]byte, h.gdEntries()*4) // bounded by validate
	if _, err := e.ra.ReadAt(buf, int64(h.gdOffset)*sectorSize); err != nil {
		return nil, fmt.Errorf("read grain directory: %w", err)
	}
	gd := make([]uint32, len(buf)/4)
	for i := range gd {
		gd[i] = binary.LittleEndian.Uint32(buf[i*4:])
		if gd[i] != 0 && int64(gd[i])*sectorSize > e.fileSize-e.gtEntries*4 {
			return nil, fmt.Errorf("grain table %d at sector %d beyond end of file", i, gd[i])
		}
	}
	return gd, nil
}

func readEmbeddedDescriptor(ra io.ReaderAt, h *sparseHeader) (*vmdkDescriptor, error) {
	if h.descSize == 0 {
		return nil, nil
	}
	text := make([]byte, h.descSize*sectorSize) // <= maxDescriptorSize
	if _, err := ra.ReadAt(text, int64(h.descOffset)*sectorSize); err != nil {
		return nil, err
	}
	return parseDescriptor(text)
}

// readGrainTable reads grain table i from the file.
func (e *sparseExtent) readGrainTable(i int64) ([]uint32, error) {
	buf := make([]byte, e.gtEntries*4)
	if _, err := e.ra.ReadAt(buf, int64(e.gd[i])*sectorSize); err != nil {
		return nil, fmt.Errorf("vmdk %s: grain table %d: %w", e.name, i, err)
	}
	gt := make([]uint32, e.gtEntries)
	for j := range gt {
		gt[j] = binary.LittleEndian.Uint32(buf[j*4:])
	}
	return gt, nil
}

// grainSector returns the file sector of grain g, or gteUnallocated or
// gteZeroed.
func (e *sparseExtent) grainSector(g int64) (uint32, error) {
	i := g / e.gtEntries
	if i >= int64(len(e.gd)) || e.gd[i] == 0 {
		return gteUnallocated, nil
	}
	gt, ok := e.cache.get(i)
	if !ok {
		var err error
		if gt, err = e.readGrainTable(i); err != nil {
			return 0, err
		}
		e.cache.put(i, gt)
	}
	return gt[g%e.gtEntries], nil
}

func (e *sparseExtent) readAt(p []byte, off int64) error {
	for len(p) > 0 {
		g, in := off/e.grainBytes, off%e.grainBytes
		n := min(int64(len(p)), e.grainBytes-in)
		sector, err := e.grainSector(g)
		if err != nil {
			return err
		}
		if err := e.readGrain(p[:n], g, sector, in); err != nil {
			return fmt.Errorf("vmdk %s: grain %d: %w", e.name, g, err)
		}
		p, off = p[n:], off+n
	}
	return nil
}

// readGrain fills p from offset in of grain g, stored at sector.
func (e *sparseExtent) readGrain(p []byte, g int64, sector uint32, in int64) error {
	if sector == gteUnallocated || sector == gteZeroed {
		clear(p)
		return nil
	}
	if e.stream != nil {
		return e.readCompressedGrain(p, g, sector, in)
	}
	pos := int64(sector)*sectorSize + in
	if pos > e.fileSize-int64(len(p)) {
		return fmt.Errorf("data at sector %d beyond end of file", sector)
	}
	n, err := e.ra.ReadAt(p, pos)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// allocated reports the allocated grains of [0,length), coalesced by the
// caller. Grain tables are read directly, bypassing the read cache.
func (e *sparseExtent) allocated(ctx context.Context, length, base int64, add func(source.Extent)) error {
	for i := range int64(len(e.gd)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.gd[i] == 0 {
			continue
		}
		gt, err := e.readGrainTable(i)
		if err != nil {
			return err
		}
		for j, sector := range gt {
			off := (i*e.gtEntries + int64(j)) * e.grainBytes
			if off >= length {
				return nil
			}
			if sector != gteUnallocated && sector != gteZeroed {
				add(source.Extent{Offset: base + off, Length: min(e.grainBytes, length-off)})
			}
		}
	}
	return nil
}
