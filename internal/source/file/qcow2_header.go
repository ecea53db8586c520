package file

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits applied to qcow2 headers before go-qcow2reader sees them: the
// library trusts header fields and would, for instance, allocate an L1 table
// of any claimed size.
const (
	qcow2MinClusterBits = 9
	qcow2MaxClusterBits = 21       // 2 MiB, as qemu
	qcow2MaxL1Bytes     = 32 << 20 // as qemu's QCOW_MAX_L1_SIZE
	qcow2MaxBackingName = 1023
	qcow2MaxExtensions  = 256
	qcow2MaxExtension   = 4096
	qcow2V3HeaderLength = 104
)

// Incompatible feature bits (qcow2 v3). Bits 0 (dirty), 1 (corrupt) and 3
// (compression type) need nothing from a reader.
const (
	qcow2FeatureExternalData = 1 << 2
	qcow2FeatureExtendedL2   = 1 << 4
	qcow2KnownFeatures       = 1<<5 - 1
)

// qcow2ExtBackingFormat is the header extension naming the backing format.
const qcow2ExtBackingFormat = 0xe2792aca

// qcow2Header holds the header fields this package uses.
type qcow2Header struct {
	version         uint32
	backingOffset   uint64
	backingSize     uint32
	clusterBits     uint32
	size            uint64
	cryptMethod     uint32
	l1Size          uint32
	l1Offset        uint64
	incompatible    uint64
	headerLength    uint32
	compressionType uint8
}

// qcow2Image is a validated qcow2 header with its backing file reference.
type qcow2Image struct {
	qcow2Header
	backingFile   string // as stored in the image, "" if none
	backingFormat string // from the header extension, "" if unset
}

func (h *qcow2Header) clusterSize() int64 { return 1 << h.clusterBits }
func (h *qcow2Header) extendedL2() bool   { return h.incompatible&qcow2FeatureExtendedL2 != 0 }

// l2Entries is the number of entries of one L2 table.
func (h *qcow2Header) l2Entries() int64 {
	if h.extendedL2() {
		return h.clusterSize() / 16
	}
	return h.clusterSize() / 8
}

// l1Span is the number of virtual bytes mapped by one L1 entry.
func (h *qcow2Header) l1Span() int64 { return h.clusterSize() * h.l2Entries() }

// l1Needed is the number of L1 entries that map the virtual size.
func (h *qcow2Header) l1Needed() int64 {
	return (int64(h.size) + h.l1Span() - 1) / h.l1Span()
}

// readQcow2Image reads and validates the header of a qcow2 file of the given
// size, its backing file name and backing format.
func readQcow2Image(ra io.ReaderAt, fileSize int64) (*qcow2Image, error) {
	buf := make([]byte, 112)
	n, err := ra.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read header: %w", err)
	}
	h, err := parseQcow2Header(buf[:n])
	if err != nil {
		return nil, err
	}
	if err := h.validate(fileSize); err != nil {
		return nil, err
	}
	img := &qcow2Image{qcow2Header: h}
	if img.backingFile, err = readQcow2BackingName(ra, &h); err != nil {
		return nil, err
	}
	if img.backingFormat, err = readQcow2BackingFormat(ra, &h, fileSize); err != nil {
		return nil, err
	}
	return img, nil
}

func parseQcow2Header(b []byte) (qcow2Header, error) {
	var h qcow2Header
	if len(b) < 72 || string(b[:4]) != qcow2Magic {
		return h, errors.New("not a qcow2 header")
	}
	be := binary.BigEndian
	h.version = be.Uint32(b[4:])
	h.backingOffset = be.Uint64(b[8:])
	h.backingSize = be.Uint32(b[16:])
	h.clusterBits = be.Uint32(b[20:])
	h.size = be.Uint64(b[24:])
	h.cryptMethod = be.Uint32(b[32:])
	h.l1Size = be.Uint32(b[36:])
	h.l1Offset = be.Uint64(b[40:])
	h.headerLength = 72
	if h.version < 3 {
		return h, nil
	}
	if len(b) < qcow2V3HeaderLength {
		return h, errors.New("truncated qcow2 v3 header")
	}
	h.incompatible = be.Uint64(b[72:])
	h.headerLength = be.Uint32(b[100:])
	if h.headerLength > qcow2V3HeaderLength {
		if len(b) <= qcow2V3HeaderLength {
			return h, errors.New("truncated qcow2 v3 header")
		}
		h.compressionType = b[104]
	}
	return h, nil
}

func (h *qcow2Header) validate(fileSize int64) error {
	if h.version != 2 && h.version != 3 {
		return fmt.Errorf("unsupported qcow2 version %d", h.version)
	}
	if h.clusterBits < qcow2MinClusterBits || h.clusterBits > qcow2MaxClusterBits {
		return fmt.Errorf("invalid cluster bits %d", h.clusterBits)
	}
	if h.cryptMethod != 0 {
		return fmt.Errorf("encrypted qcow2 (crypt method %d) not supported", h.cryptMethod)
	}
	if err := h.validateV3(fileSize); err != nil {
		return err
	}
	if h.size > uint64(maxDiskSize) {
		return fmt.Errorf("virtual size %d too large", h.size)
	}
	return h.validateL1(fileSize)
}

func (h *qcow2Header) validateV3(fileSize int64) error {
	if h.version < 3 {
		return nil
	}
	if h.headerLength < qcow2V3HeaderLength || h.headerLength%8 != 0 ||
		int64(h.headerLength) > h.clusterSize() || int64(h.headerLength) > fileSize {
		return fmt.Errorf("invalid header length %d", h.headerLength)
	}
	switch f := h.incompatible; {
	case f&qcow2FeatureExternalData != 0:
		return errors.New("qcow2 with external data file not supported")
	case f&^qcow2KnownFeatures != 0:
		return fmt.Errorf("unknown incompatible qcow2 features %#x", f&^qcow2KnownFeatures)
	}
	if h.compressionType > 1 {
		return fmt.Errorf("unknown compression type %d", h.compressionType)
	}
	return nil
}

func (h *qcow2Header) validateL1(fileSize int64) error {
	if h.size == 0 {
		return nil
	}
	if int64(h.l1Size) < h.l1Needed() {
		return fmt.Errorf("L1 table of %d entries too small for virtual size %d", h.l1Size, h.size)
	}
	if int64(h.l1Size)*8 > qcow2MaxL1Bytes {
		return fmt.Errorf("L1 table of %d entries too large", h.l1Size)
	}
	if h.l1Offset == 0 || h.l1Offset%uint64(h.clusterSize()) != 0 ||
		h.l1Offset > uint64(fileSize) || int64(h.l1Size)*8 > fileSize-int64(h.l1Offset) {
		return fmt.Errorf("L1 table offset %d invalid for a file of %d bytes", h.l1Offset, fileSize)
	}
	return nil
}

func readQcow2BackingName(ra io.ReaderAt, h *qcow2Header) (string, error) {
	if h.backingOffset == 0 {
		return "", nil
	}
	if h.backingSize == 0 || h.backingSize > qcow2MaxBackingName || h.backingOffset > uint64(maxDiskSize) {
		return "", fmt.Errorf("invalid backing file name (offset %d, size %d)", h.backingOffset, h.backingSize)
	}
	name := make([]byte, h.backingSize)
	if _, err := ra.ReadAt(name, int64(h.backingOffset)); err != nil {
		return "", fmt.Errorf("read backing file name: %w", err)
	}
	return string(name), nil
}

// readQcow2BackingFormat walks the header extensions the way go-qcow2reader
// does and returns the backing format it will use.
func readQcow2BackingFormat(ra io.ReaderAt, h *qcow2Header, fileSize int64) (string, error) {
	var format string
	off := int64(h.headerLength)
	for range qcow2MaxExtensions {
		var hdr [8]byte
		if off+8 > fileSize {
			return format, nil
		}
		if _, err := ra.ReadAt(hdr[:], off); err != nil {
			return "", fmt.Errorf("header extension at %d: %w", off, err)
		}
		typ, length := binary.BigEndian.Uint32(hdr[:]), int64(binary.BigEndian.Uint32(hdr[4:]))
		if length > qcow2MaxExtension || off+8+length > fileSize {
			return "", fmt.Errorf("header extension %#x at %d: invalid length %d", typ, off, length)
		}
		switch typ {
		case 0:
			return format, nil
		case qcow2ExtBackingFormat:
			data := make([]byte, length)
			if _, err := ra.ReadAt(data, off+8); err != nil {
				return "", fmt.Errorf("backing format extension: %w", err)
			}
			format = string(data)
		}
		off += 8 + (length+7)/8*8
	}
	return "", errors.New("too many header extensions")
}
