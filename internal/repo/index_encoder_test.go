package repo

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

func TestIndexEncoder(t *testing.T) {
	cs := MinChunkSize
	many := &Index{DiskSize: int64(cs) * 200000, ChunkSize: cs}
	for n := uint64(0); n < 200000; n += 3 { // crosses several blocks
		many.Entries = append(many.Entries, IndexEntry{N: n, ID: idOf(byte(n), uint32(n))})
	}
	for _, ix := range []*Index{
		{DiskSize: 0, ChunkSize: cs},
		{DiskSize: int64(cs)*4 + 1, ChunkSize: cs, Entries: []IndexEntry{{N: 0, ID: ChunkID{1}}, {N: 4, ID: ChunkID{2}}}},
		{DiskSize: 1 << 40, ChunkSize: DefaultChunkSize, Entries: []IndexEntry{{N: 5}, {N: 300}, {N: 1<<20 - 1, ID: ChunkID{7}}}},
		many,
	} {
		want, err := ix.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		enc, err := NewIndexEncoder(ix.DiskSize, ix.ChunkSize)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ix.Entries {
			if err := enc.Add(e.N, e.ID); err != nil {
				t.Fatal(err)
			}
		}
		if enc.Count() != len(ix.Entries) {
			t.Fatalf("Count = %d, want %d", enc.Count(), len(ix.Entries))
		}
		if got := enc.Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("%d entries: encoder and MarshalBinary differ (%d and %d bytes)", len(ix.Entries), len(got), len(want))
		}
	}
}

func TestIndexEncoderRejects(t *testing.T) {
	cs := MinChunkSize
	if _, err := NewIndexEncoder(1, 1000); err == nil {
		t.Error("a chunk size that is not a power of two was accepted")
	}
	if _, err := NewIndexEncoder(-1, cs); err == nil {
		t.Error("a negative disk size was accepted")
	}
	enc, err := NewIndexEncoder(int64(cs)*10, cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Add(3, ChunkID{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{3, 2, 10, 1 << 63} {
		if err := enc.Add(n, ChunkID{}); err == nil {
			t.Errorf("entry %d after 3 on a 10-chunk disk was accepted", n)
		}
	}
}

// TestSaveEncodedIndexMemory: storing a large index of distinct chunks
// allocates about one more copy of it (the sealed blob), not a compressed
// copy as well; an index that compresses is still stored compressed.
func TestSaveEncodedIndexMemory(t *testing.T) {
	r, be := newTestRepo(t, true)
	ctx := t.Context()
	const entries = 400000 // larger than a pooled chunk buffer
	cs := MinChunkSize
	distinct, _ := NewIndexEncoder(int64(entries)*int64(cs), cs)
	same, _ := NewIndexEncoder(int64(entries)*int64(cs), cs)
	h := r.NewHasher()
	for n := range uint64(entries) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], n)
		_ = distinct.Add(n, h.Sum(b[:]))
		_ = same.Add(n, ChunkID{7})
	}
	plain := distinct.Bytes()
	// The least of a few saves: the compressor may pick a fresh encoder
	// from its pool (one per core), whose history is allocated once.
	alloc := uint64(1 << 62)
	for range 4 {
		var err error
		alloc = min(alloc, allocated(func() { _, err = r.SaveEncodedIndex(ctx, "0123456789abcdef", 0, plain) }))
		if err != nil {
			t.Fatal(err)
		}
	}
	if limit := uint64(len(plain)) + uint64(len(plain))/4 + 2<<20; alloc > limit {
		t.Errorf("saving a %d-byte index allocated %d bytes (limit %d)", len(plain), alloc, limit)
	}
	// Stored raw: read in place by WalkIndex, without a decompressed copy.
	if b, err := os.ReadFile(filePath(be, indexName("0123456789abcdef", 0))); err != nil || b[5]&flagZstd != 0 {
		t.Errorf("an index of distinct chunks was stored compressed (%v)", err)
	}
	plainSame := same.Bytes()
	if _, err := r.SaveEncodedIndex(ctx, "0123456789abcdef", 1, plainSame); err != nil {
		t.Fatal(err)
	}
	if n := dirBytes(t, be, "indexes"); n > int64(len(plain))+int64(len(plainSame))/10 {
		t.Errorf("an index of one repeated chunk was not compressed (%d bytes stored)", n)
	}
}
