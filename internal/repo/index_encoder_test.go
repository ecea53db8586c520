package repo

import (
	"bytes"
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
