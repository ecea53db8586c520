package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// rawBlob builds an unencrypted blob with any header values.
func rawBlob(kind, flags byte, plainLen uint64, payload []byte) []byte {
	b := make([]byte, blobHeaderLen, blobHeaderLen+len(payload))
	copy(b, blobMagic)
	b[4], b[5] = kind, flags
	binary.LittleEndian.PutUint64(b[8:], plainLen)
	binary.LittleEndian.PutUint64(b[16:], uint64(len(payload)))
	b = append(b, payload...)
	fixCRC(b)
	return b
}

// zstdRLEFrame is a single-segment zstd frame declaring content size fcs
// and holding one RLE block of n copies of c.
func zstdRLEFrame(fcs uint64, n int, c byte) []byte {
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0} // magic; single segment, 8-byte content size
	f = binary.LittleEndian.AppendUint64(f, fcs)
	h := uint32(1 | 1<<1 | n<<3) // last block, RLE, size n
	return append(f, byte(h), byte(h>>8), byte(h>>16), c)
}

// skippableFrame is a zstd frame decoders skip.
func skippableFrame(n int) []byte {
	f := binary.LittleEndian.AppendUint32(nil, 0x184d2a50)
	f = binary.LittleEndian.AppendUint32(f, uint32(n))
	return append(f, make([]byte, n)...)
}

func TestBlobOpenBoundsAllocation(t *testing.T) {
	c := fuzzCodec(t, false)
	valid := append(skippableFrame(8), zstdRLEFrame(1000, 1000, 'x')...)
	if out, err := c.open(rawBlob(kindIndex, flagZstd, 1000, valid), kindIndex, nil, maxMetadata, nil); err != nil ||
		!bytes.Equal(out, bytes.Repeat([]byte{'x'}, 1000)) {
		t.Fatalf("valid RLE blob: %d bytes, %v", len(out), err)
	}
	tests := []struct {
		name     string
		plainLen uint64
		payload  []byte
	}{
		// The header claims 3 GiB for a 30-byte payload.
		{"header plain length", maxMetadata - 1, zstdRLEFrame(1000, 1000, 'x')},
		// The header is plausible (9 MiB from 400 bytes), the zstd frame
		// claims 400 MiB: the decoder must not size its output by the frame.
		{"frame content size", 9 << 20, append(skippableFrame(400), zstdRLEFrame(400<<20, 1000, 'x')...)},
		// Frame and header agree on 9 MiB, but the data is 1000 bytes.
		{"short content", 9 << 20, append(skippableFrame(400), zstdRLEFrame(9<<20, 1000, 'x')...)},
	}
	for _, tc := range tests {
		blob := rawBlob(kindIndex, flagZstd, tc.plainLen, tc.payload)
		var err error
		alloc := allocated(func() { _, err = c.open(blob, kindIndex, nil, maxMetadata, nil) })
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", tc.name, err)
		}
		if alloc > 32<<20 {
			t.Errorf("%s: opening a %d-byte blob allocated %d MiB", tc.name, len(blob), alloc>>20)
		}
	}
}

func TestBlobOpenRejects(t *testing.T) {
	for _, enc := range []bool{false, true} {
		c := fuzzCodec(t, enc)
		plain := bytes.Repeat([]byte("abc"), 1000)
		good := c.seal(kindManifest, []byte("points/x"), plain)
		if out, err := c.open(bytes.Clone(good), kindManifest, []byte("points/x"), maxMetadata, nil); err != nil || !bytes.Equal(out, plain) {
			t.Fatalf("encrypted=%v: valid blob: %v", enc, err)
		}
		tests := map[string]struct {
			b       []byte
			kind    byte
			binding string
			max     int
		}{
			"wrong kind":    {good, kindIndex, "points/x", maxMetadata},
			"too large":     {good, kindManifest, "points/x", len(plain) - 1},
			"truncated":     {good[:len(good)-1], kindManifest, "points/x", maxMetadata},
			"header only":   {good[:blobHeaderLen], kindManifest, "points/x", maxMetadata},
			"short":         {good[:10], kindManifest, "points/x", maxMetadata},
			"extended":      {append(bytes.Clone(good), 0), kindManifest, "points/x", maxMetadata},
			"other codec":   {fuzzCodec(t, !enc).seal(kindManifest, []byte("points/x"), plain), kindManifest, "points/x", maxMetadata},
			"reserved byte": {func() []byte { b := bytes.Clone(good); b[6] = 1; fixCRC(b); return b }(), kindManifest, "points/x", maxMetadata},
			"unknown flag":  {func() []byte { b := bytes.Clone(good); b[5] |= 4; fixCRC(b); return b }(), kindManifest, "points/x", maxMetadata},
		}
		if enc {
			// Only authentication ties a blob to its name.
			tests["moved"] = struct {
				b       []byte
				kind    byte
				binding string
				max     int
			}{good, kindManifest, "points/y", maxMetadata}
		}
		for name, tc := range tests {
			if _, err := c.open(bytes.Clone(tc.b), tc.kind, []byte(tc.binding), tc.max, nil); !errors.Is(err, ErrCorrupt) {
				t.Errorf("encrypted=%v %s: err = %v, want ErrCorrupt", enc, name, err)
			}
		}
	}
}

// TestBlobHighlyCompressible: the most compressible data the sealer can
// produce still opens (the plain-length plausibility check is not too tight).
func TestBlobHighlyCompressible(t *testing.T) {
	for _, compression := range []string{CompressionFast, CompressionOptimal, CompressionHigh} {
		c, err := newCodec(fuzzKey, true, compression)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			kind byte
			n    int
		}{{kindChunk, MaxChunkSize}, {kindChunk, 65}, {kindManifest, MaxChunkSize + 1<<20}} {
			plain := bytes.Repeat([]byte{'x'}, tc.n)
			blob := c.seal(tc.kind, nil, plain)
			if blob[5]&flagZstd == 0 {
				t.Errorf("%s: %d equal bytes not compressed", compression, tc.n)
			}
			out, err := c.open(blob, tc.kind, nil, maxPlainFor(tc.kind), nil)
			if err != nil || !bytes.Equal(out, plain) {
				t.Errorf("%s: %d equal bytes (%d stored): %v", compression, tc.n, len(blob), err)
			}
		}
		c.close()
	}
}
