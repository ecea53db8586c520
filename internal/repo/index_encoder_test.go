package repo

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"testing"
)

func TestIndexEncoder(t *testing.T) {
	r, _ := newTestRepo(t, true)
	cs := MinChunkSize
	many := &Index{DiskSize: int64(cs) * 200000, ChunkSize: cs}
	for n := uint64(0); n < 200000; n += 3 {
		many.Entries = append(many.Entries, IndexEntry{N: n, ID: idOf(byte(n), uint32(n))})
	}
	indexes := []*Index{
		{DiskSize: 0, ChunkSize: cs},
		{DiskSize: int64(cs)*4 + 1, ChunkSize: cs, Entries: []IndexEntry{{N: 0, ID: ChunkID{1}}, {N: 4, ID: ChunkID{2}}}},
		{DiskSize: 1 << 40, ChunkSize: DefaultChunkSize, Entries: []IndexEntry{{N: 5}, {N: 300}, {N: 1<<20 - 1, ID: ChunkID{7}}}},
		many,
	}
	for _, spillAt := range []int{-1, 0, 50, 1000, 64 << 10} {
		for _, ix := range indexes {
			want, err := ix.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			enc, err := NewIndexEncoder(ix.DiskSize, ix.ChunkSize, EncoderOptions{SpillAt: spillAt, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ix.Entries {
				if err := enc.Add(e.N, e.ID); err != nil {
					t.Fatal(err)
				}
				if spillAt > 0 && enc.Buffered() > spillAt {
					t.Fatalf("spill at %d: %d bytes held in memory", spillAt, enc.Buffered())
				}
			}
			if enc.Count() != len(ix.Entries) || enc.Len() != len(want) {
				t.Fatalf("Count = %d, Len = %d; want %d, %d", enc.Count(), enc.Len(), len(ix.Entries), len(want))
			}
			got, err := enc.Bytes()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("spill at %d, %d entries: encoder and MarshalBinary differ (%d and %d bytes, %v)",
					spillAt, len(ix.Entries), len(got), len(want), err)
			}
			checkEntriesAndHash(t, r, enc, ix, want)
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkEntriesAndHash: the encoder's entries read back in order, twice at
// once, and its hash is that of its bytes.
func checkEntriesAndHash(t *testing.T, r *Repository, enc *IndexEncoder, ix *Index, want []byte) {
	t.Helper()
	r1, r2 := enc.Entries(), enc.Entries()
	for i, e := range ix.Entries {
		for _, r := range []*IndexEntryReader{r1, r2} {
			if got, err := r.Next(); err != nil || got != e {
				t.Fatalf("entry %d of %d read back as %v, %v; want %v", i, len(ix.Entries), got, err, e)
			}
		}
	}
	if _, err := r1.Next(); err != io.EOF {
		t.Fatalf("after the last entry: %v, want io.EOF", err)
	}
	if h, err := enc.Hash(r.NewHasher()); err != nil || h != r.NewHasher().Sum(want) {
		t.Fatalf("Hash = %v, %v; want the hash of the encoded bytes", h, err)
	}
}

// TestIndexEncoderSpillFileGone: the spill file is unlinked at once, so
// nothing is left in its directory, even before Close.
func TestIndexEncoderSpillFileGone(t *testing.T) {
	dir := t.TempDir()
	enc, err := NewIndexEncoder(1<<40, MinChunkSize, EncoderOptions{SpillAt: 100, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for n := range uint64(100) {
		if err := enc.Add(n, ChunkID{byte(n)}); err != nil {
			t.Fatal(err)
		}
	}
	if enc.Buffered() > 100 {
		t.Fatalf("%d bytes buffered", enc.Buffered())
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("spill file visible in %s: %v", dir, left)
	}
	_ = enc.Close()
}

func TestIndexEncoderRejects(t *testing.T) {
	cs := MinChunkSize
	if _, err := NewIndexEncoder(1, 1000, EncoderOptions{}); err == nil {
		t.Error("a chunk size that is not a power of two was accepted")
	}
	if _, err := NewIndexEncoder(-1, cs, EncoderOptions{}); err == nil {
		t.Error("a negative disk size was accepted")
	}
	enc, err := NewIndexEncoder(int64(cs)*10, cs, EncoderOptions{})
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
// allocates one copy of it (read back from the spill file into the buffer
// it is sealed in), not a compressed copy or a second one as well; it is
// stored raw, and an index that compresses is still stored compressed.
func TestSaveEncodedIndexMemory(t *testing.T) {
	r, be := newTestRepo(t, true)
	ctx := t.Context()
	const entries = 400000 // larger than a pooled chunk buffer
	cs := MinChunkSize
	distinct, _ := NewIndexEncoder(int64(entries)*int64(cs), cs, EncoderOptions{Dir: t.TempDir()})
	same, _ := NewIndexEncoder(int64(entries)*int64(cs), cs, EncoderOptions{Dir: t.TempDir()})
	defer distinct.Close()
	defer same.Close()
	h := r.NewHasher()
	for n := range uint64(entries) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], n)
		_ = distinct.Add(n, h.Sum(b[:]))
		_ = same.Add(n, ChunkID{7})
	}
	// The least of a few saves: the compressor may pick a fresh encoder
	// from its pool (one per core), whose history is allocated once.
	alloc := uint64(1 << 62)
	for range 4 {
		var err error
		alloc = min(alloc, allocated(func() { _, err = r.SaveEncodedIndex(ctx, "0123456789abcdef", 0, distinct) }))
		if err != nil {
			t.Fatal(err)
		}
	}
	if limit := uint64(distinct.Len()) + 1<<20; alloc > limit {
		t.Errorf("saving a %d-byte index allocated %d bytes (limit %d)", distinct.Len(), alloc, limit)
	}
	// Stored raw: read in place by WalkIndex, without a decompressed copy.
	if b, err := os.ReadFile(filePath(be, indexName("0123456789abcdef", 0))); err != nil || b[5]&flagZstd != 0 {
		t.Errorf("an index of distinct chunks was stored compressed (%v)", err)
	}
	if _, err := r.SaveEncodedIndex(ctx, "0123456789abcdef", 1, same); err != nil {
		t.Fatal(err)
	}
	if n := dirBytes(t, be, "indexes"); n > int64(distinct.Len())+int64(same.Len())/10 {
		t.Errorf("an index of one repeated chunk was not compressed (%d bytes stored)", n)
	}
}
