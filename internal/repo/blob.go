package repo

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Every stored file except config and keys is a blob:
//
//	offset size field
//	0      4    magic "HFB1"
//	4      1    kind (1 chunk, 2 index, 3 manifest, 4 scan record)
//	5      1    flags (bit 0: zstd, bit 1: AES-256-GCM)
//	6      2    reserved, zero
//	8      8    plain length, little endian
//	16     8    payload length, little endian
//	24     4    CRC-32C of bytes 0..23 followed by the payload
//	28     …    payload: zstd frame or plain bytes; when encrypted,
//	            12-byte nonce || AES-256-GCM ciphertext || 16-byte tag,
//	            additional data = bytes 0..23 || binding (the chunk ID or
//	            the file name), so a blob cannot be moved to another name.
const (
	blobMagic     = "HFB1"
	blobHeaderLen = 28

	kindChunk    byte = 1
	kindIndex    byte = 2
	kindManifest byte = 3
	kindScan     byte = 4

	flagZstd      byte = 1
	flagEncrypted byte = 2

	nonceLen = 12
	tagLen   = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// codec seals and opens blobs with one repository's keys and compression.
type codec struct {
	aead cipher.AEAD // nil when the repository is not encrypted
	enc  *zstd.Encoder
	dec  *zstd.Decoder // for chunks: output bounded by MaxChunkSize
	big  *zstd.Decoder // for indexes and manifests
	// bufs recycles chunk-sized buffers (compression output, sealed blobs)
	// so the backup hot path does not allocate and clear ~2 MiB per chunk.
	bufs sync.Pool
}

// maxPooled is the largest buffer kept for reuse (a sealed 8 MiB chunk).
const maxPooled = MaxChunkSize + blobHeaderLen + nonceLen + tagLen

func (c *codec) buffer(n int) []byte {
	if n <= maxPooled {
		if b, ok := c.bufs.Get().(*[]byte); ok && cap(*b) >= n {
			return (*b)[:0]
		}
		return make([]byte, 0, maxPooled)
	}
	return make([]byte, 0, n)
}

// recycle returns a buffer from seal (or buffer) for reuse.
func (c *codec) recycle(b []byte) {
	if cap(b) == maxPooled {
		c.bufs.Put(&b)
	}
}

// maxMetadata bounds the plain size of an index or manifest (an index of a
// fully written 64 TiB disk with 1 MiB chunks).
const maxMetadata = 3 << 30

func newCodec(key []byte, encrypted bool, compression string) (*codec, error) {
	c := &codec{}
	if encrypted {
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		if c.aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	level := zstd.SpeedFastest
	switch compression {
	case CompressionOptimal:
		level = zstd.SpeedDefault
	case CompressionHigh:
		level = zstd.SpeedBetterCompression
	}
	var err error
	if compression != CompressionNone {
		c.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderCRC(false),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, err
		}
	}
	// WithDecodeAllCapLimit: output never grows beyond the buffer open
	// sizes from the header, whatever content size the frame claims.
	if c.dec, err = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxChunkSize), zstd.IgnoreChecksum(true),
		zstd.WithDecodeAllCapLimit(true)); err != nil {
		return nil, err
	}
	c.big, err = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxMetadata), zstd.WithDecoderConcurrency(1),
		zstd.WithDecodeAllCapLimit(true))
	return c, err
}

func (c *codec) close() {
	if c.enc != nil {
		c.enc.Close()
	}
	c.dec.Close()
	c.big.Close()
}

// seal builds a blob. Compression is kept only when it saves at least 1/32
// of the size (1/8 for an index); incompressible data is stored raw. The payload is written
// once, behind room for the header (and nonce), and encrypted in place, so
// sealing allocates one blob-sized buffer (from the pool for chunks) — an
// index of a large disk is not copied twice. The result may be given to
// recycle once written.
func (c *codec) seal(kind byte, binding, plain []byte) []byte {
	pre := c.headroom()
	return c.sealInPlace(kind, binding, append(c.buffer(pre + len(plain) + tagLen)[:pre], plain...))
}

// headroom is the room sealInPlace needs before the plain bytes.
func (c *codec) headroom() int {
	if c.aead != nil {
		return blobHeaderLen + nonceLen
	}
	return blobHeaderLen
}

// sealInPlace seals buf[headroom():], the plain bytes, into a blob in buf
// itself (room for the tag after them saves a copy) unless compressing
// them is worth it, which writes the compressed form into a new buffer.
func (c *codec) sealInPlace(kind byte, binding, buf []byte) []byte {
	pre := c.headroom()
	plain := buf[pre:]
	out := buf // header room, then the payload
	var flags byte
	// An index is kept compressed only when that saves an eighth: the
	// index of distinct chunks is mostly random IDs (zstd saves about 3 %),
	// and stored raw it is read in place, without a second copy.
	div := 32
	if kind == kindIndex {
		div = 8
	}
	if c.enc != nil && len(plain) > 64 && c.worthCompressing(plain, div) && (kind != kindChunk || c.chunkCompressible(plain)) {
		z := c.enc.EncodeAll(plain, c.buffer(pre + len(plain) + tagLen)[:pre])
		if len(z)-pre < len(plain)-len(plain)/div {
			c.recycle(buf)
			out, flags = z, flagZstd
		} else {
			c.recycle(z)
		}
	}
	if c.aead != nil && cap(out)-len(out) < tagLen {
		out = slices.Grow(out, tagLen)
	}
	payloadLen := len(out) - pre
	clear(out[:pre]) // a recycled buffer holds old bytes
	copy(out, blobMagic)
	out[4] = kind
	if c.aead != nil {
		flags |= flagEncrypted
	}
	out[5] = flags
	binary.LittleEndian.PutUint64(out[8:], uint64(len(plain)))
	if c.aead != nil {
		binary.LittleEndian.PutUint64(out[16:], uint64(nonceLen+payloadLen+tagLen))
		nonce := out[blobHeaderLen:pre]
		_, _ = rand.Read(nonce)
		// In place: dst is exactly the plaintext's storage, as AEAD allows.
		ct := c.aead.Seal(out[pre:pre], nonce, out[pre:], aad(out[:24], binding))
		out = out[:pre+len(ct)]
	} else {
		binary.LittleEndian.PutUint64(out[16:], uint64(payloadLen))
	}
	crc := crc32.Update(crc32.Checksum(out[:24], castagnoli), castagnoli, out[blobHeaderLen:])
	binary.LittleEndian.PutUint32(out[24:], crc)
	return out
}

// sampleLen is how much of a large plain (an index of a big disk) seal
// compresses first to decide whether compressing it all is worth it: an
// index of distinct chunks is mostly random IDs, and compressing it whole
// would allocate a second copy of it for nothing.
const sampleLen = 256 << 10

func (c *codec) worthCompressing(plain []byte, div int) bool {
	if len(plain) <= 4*sampleLen {
		return true
	}
	z := c.enc.EncodeAll(plain[:sampleLen], make([]byte, 0, sampleLen))
	return len(z) < sampleLen-sampleLen/div
}

func aad(header, binding []byte) []byte {
	a := make([]byte, 0, len(header)+len(binding))
	return append(append(a, header...), binding...)
}

// open checks and decodes a blob (decrypting in place, so b is clobbered);
// maxPlain bounds the plain size accepted.
// dst, when large enough, receives the plain bytes.
func (c *codec) open(b []byte, kind byte, binding []byte, maxPlain int, dst []byte) ([]byte, error) {
	if len(b) < blobHeaderLen {
		return nil, fmt.Errorf("%w: truncated header (%d bytes)", ErrCorrupt, len(b))
	}
	if string(b[:4]) != blobMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if b[4] != kind {
		return nil, fmt.Errorf("%w: blob kind %d, want %d", ErrCorrupt, b[4], kind)
	}
	flags := b[5]
	if flags&^(flagZstd|flagEncrypted) != 0 || b[6] != 0 || b[7] != 0 {
		return nil, fmt.Errorf("%w: unknown flags", ErrCorrupt)
	}
	plainLen := binary.LittleEndian.Uint64(b[8:])
	payloadLen := binary.LittleEndian.Uint64(b[16:])
	if plainLen > uint64(maxPlain) {
		return nil, fmt.Errorf("%w: plain length %d exceeds %d", ErrCorrupt, plainLen, maxPlain)
	}
	if payloadLen != uint64(len(b)-blobHeaderLen) {
		return nil, fmt.Errorf("%w: payload length %d, file holds %d (truncated?)", ErrCorrupt, payloadLen, len(b)-blobHeaderLen)
	}
	crc := crc32.Update(crc32.Checksum(b[:24], castagnoli), castagnoli, b[blobHeaderLen:])
	if crc != binary.LittleEndian.Uint32(b[24:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	payload := b[blobHeaderLen:]
	if flags&flagEncrypted != 0 {
		if c.aead == nil {
			return nil, fmt.Errorf("%w: encrypted blob in an unencrypted repository", ErrCorrupt)
		}
		if len(payload) < nonceLen+tagLen {
			return nil, fmt.Errorf("%w: truncated ciphertext", ErrCorrupt)
		}
		var err error
		payload, err = c.aead.Open(payload[nonceLen:nonceLen], payload[:nonceLen], payload[nonceLen:], aad(b[:24], binding))
		if err != nil {
			return nil, fmt.Errorf("%w: authentication failed", ErrCorrupt)
		}
	} else if c.aead != nil {
		return nil, fmt.Errorf("%w: unencrypted blob in an encrypted repository", ErrCorrupt)
	}
	if flags&flagZstd == 0 {
		if uint64(len(payload)) != plainLen {
			return nil, fmt.Errorf("%w: plain length mismatch", ErrCorrupt)
		}
		return payload, nil
	}
	// zstd turns at most 4 input bytes (an RLE block) into 128 KiB; a
	// header claiming more is corrupt and must not make us allocate it.
	if plainLen > uint64(len(payload))<<15 {
		return nil, fmt.Errorf("%w: plain length %d impossible for %d compressed bytes", ErrCorrupt, plainLen, len(payload))
	}
	if cap(dst) < int(plainLen) {
		dst = make([]byte, 0, plainLen)
	}
	dec := c.dec
	if plainLen > MaxChunkSize {
		dec = c.big
	}
	out, err := dec.DecodeAll(payload, dst[:0])
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
	}
	if uint64(len(out)) != plainLen {
		return nil, fmt.Errorf("%w: decompressed %d bytes, header says %d", ErrCorrupt, len(out), plainLen)
	}
	return out, nil
}
