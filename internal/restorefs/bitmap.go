package restorefs

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// Redo bitmap file format; see the package documentation.
const (
	bitmapMagic     = "HFREDOBM"
	bitmapVersion   = 1
	bitmapHeaderLen = 40
	// DefaultBlockSize is the overlay block size unless told otherwise.
	DefaultBlockSize = 64 << 10
	minBlockSize     = 4 << 10
	maxBlockSize     = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// validBlockSize checks an overlay block size.
func validBlockSize(bs int) error {
	if bs < minBlockSize || bs > maxBlockSize || bits.OnesCount(uint(bs)) != 1 {
		return fmt.Errorf("overlay block size %d: want a power of two from %d to %d", bs, minBlockSize, maxBlockSize)
	}
	return nil
}

// blockCount is how many blocks cover size bytes.
func blockCount(size int64, bs int) uint64 {
	return (uint64(size) + uint64(bs) - 1) / uint64(bs)
}

// bitmapLen is the length in bytes of the bitmap of size bytes.
func bitmapLen(size int64, bs int) uint64 {
	return (blockCount(size, bs) + 7) / 8
}

// marshalBitmap encodes a bitmap file. bm holds bit b of block b as
// byte b/8, bit b%8.
func marshalBitmap(bs int, size int64, bm []byte) []byte {
	b := make([]byte, bitmapHeaderLen+len(bm))
	copy(b, bitmapMagic)
	binary.LittleEndian.PutUint32(b[8:], bitmapVersion)
	binary.LittleEndian.PutUint32(b[12:], uint32(bs))
	binary.LittleEndian.PutUint64(b[16:], uint64(size))
	binary.LittleEndian.PutUint64(b[24:], uint64(len(bm)))
	copy(b[bitmapHeaderLen:], bm)
	binary.LittleEndian.PutUint32(b[32:], bitmapCRC(b))
	return b
}

// bitmapCRC is the CRC-32C of the header's first 32 bytes and the bitmap.
func bitmapCRC(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:32])
	return crc32.Update(c, castagnoli, b[bitmapHeaderLen:])
}

// parseBitmap decodes and checks a bitmap file. The returned bitmap
// aliases b.
func parseBitmap(b []byte) (bs int, size int64, bm []byte, err error) {
	bad := func(format string, a ...any) (int, int64, []byte, error) {
		return 0, 0, nil, fmt.Errorf("%w: "+format, append([]any{ErrBadBitmap}, a...)...)
	}
	if len(b) < bitmapHeaderLen || string(b[:8]) != bitmapMagic {
		return bad("not a redo bitmap file")
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != bitmapVersion {
		return bad("version %d, this program reads %d", v, bitmapVersion)
	}
	bs = int(binary.LittleEndian.Uint32(b[12:]))
	if err := validBlockSize(bs); err != nil {
		return bad("%v", err)
	}
	usize := binary.LittleEndian.Uint64(b[16:])
	if usize > 1<<62 {
		return bad("disk size %d out of range", usize)
	}
	size = int64(usize)
	n := binary.LittleEndian.Uint64(b[24:])
	if want := bitmapLen(size, bs); n != want || n != uint64(len(b)-bitmapHeaderLen) {
		return bad("bitmap of %d bytes in a file of %d for %d blocks", n, len(b), blockCount(size, bs))
	}
	if binary.LittleEndian.Uint32(b[36:]) != 0 {
		return bad("reserved header bytes set")
	}
	if got, want := bitmapCRC(b), binary.LittleEndian.Uint32(b[32:]); got != want {
		return bad("checksum %08x, expected %08x", got, want)
	}
	bm = b[bitmapHeaderLen:]
	if tail := blockCount(size, bs) % 8; tail != 0 && bm[len(bm)-1]>>tail != 0 {
		return bad("bits set past the last block")
	}
	return bs, size, bm, nil
}
