package repo

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestSealProbesChunks: a chunk whose probe windows do not shrink is
// stored uncompressed without compressing it whole (even one that would
// shrink: the probe decides); any compressible data
// a window sees (a stretch as long as two windows' distance, wherever it
// lies) gets the whole chunk compressed, as before the probe; every blob
// opens to its plain bytes.
func TestSealProbesChunks(t *testing.T) {
	const mib = 1 << 20
	rnd := func(n int, seed uint64) []byte {
		b := make([]byte, n)
		r := rand.New(rand.NewPCG(seed, 1))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	withZeros := func(off, n int) []byte {
		b := rnd(mib, 7)
		clear(b[off : off+n])
		return b
	}
	// The probe's blind spot, built on purpose: random bytes exactly where
	// the windows lie, zeros between them. Compressed whole it would shrink
	// to a sixteenth; seal trusts the probe and stores it as it is.
	onlyWindows := make([]byte, mib)
	for i := range probeWindows {
		copy(onlyWindows[i*(mib/probeWindows):], rnd(probeLen, uint64(10+i)))
	}
	text := bytes.Repeat([]byte("holdfast backs up virtual machines; "), mib/36+1)[:mib]
	step := mib / probeWindows
	tests := []struct {
		name       string
		plain      []byte
		compressed bool
	}{
		{"random", rnd(mib, 1), false},
		{"random 8 MiB", rnd(8*mib, 2), false},
		{"text", text, true},
		{"zeros", make([]byte, mib), true},
		{"random, second half zeros", withZeros(mib/2, mib/2), true},
		{"random, zeros between windows", withZeros(probeLen+1, step+probeLen), true},
		{"random, zeros at the end", withZeros(mib-step-probeLen, step+probeLen), true},
		{"random, zeros at the start", withZeros(0, step), true},
		{"random only in the windows", onlyWindows, false},
		{"small random", rnd(64<<10, 3), false},
		{"small text", text[:64<<10], true},
	}
	c, err := newCodec(fuzzKey, true, CompressionFast)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.chunkCompressible(tt.plain); got != tt.compressed && len(tt.plain) >= 4*probeWindows*probeLen {
				t.Errorf("probe says compressible %v, want %v", got, tt.compressed)
			}
			blob := c.seal(kindChunk, []byte("id"), tt.plain)
			if got := blob[5]&flagZstd != 0; got != tt.compressed {
				t.Errorf("stored compressed %v, want %v", got, tt.compressed)
			}
			out, err := c.open(blob, kindChunk, []byte("id"), MaxChunkSize, nil)
			if err != nil || !bytes.Equal(out, tt.plain) {
				t.Fatalf("open: %v (equal %v)", err, bytes.Equal(out, tt.plain))
			}
			c.recycle(blob)
		})
	}
}
