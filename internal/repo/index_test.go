package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestIndexRoundTrip(t *testing.T) {
	const cs = MinChunkSize
	id := func(b byte) ChunkID { return ChunkID{b, b, b} }
	tests := []struct {
		name      string
		ix        Index
		chunks    uint64
		dataBytes int64
		size      int // encoded size
	}{
		{"empty disk", Index{DiskSize: 0, ChunkSize: cs}, 0, 0, 32},
		{"all zero", Index{DiskSize: 100 * cs, ChunkSize: cs}, 100, 0, 32},
		{"single", Index{DiskSize: 4 * cs, ChunkSize: cs, Entries: []IndexEntry{{2, id(1)}}}, 4, cs, 32 + 33},
		{"one byte disk", Index{DiskSize: 1, ChunkSize: MaxChunkSize, Entries: []IndexEntry{{0, id(1)}}}, 1, 1, 32 + 33},
		{"sparse gaps", Index{DiskSize: 1 << 40, ChunkSize: DefaultChunkSize, Entries: []IndexEntry{
			{0, id(1)}, {1, id(2)}, {200, id(3)}, {70000, id(1)}, {1<<20 - 1, id(4)}}},
			1 << 20, 5 * DefaultChunkSize,
			// gaps 0, 0, 198 (2-byte varint), 69799 (3 bytes), 978575 (3 bytes)
			32 + 5*32 + 1 + 1 + 2 + 3 + 3},
		{"last short chunk", Index{DiskSize: 3*cs + 100, ChunkSize: cs, Entries: []IndexEntry{{1, id(1)}, {3, id(2)}}},
			4, cs + 100, 32 + 2*33},
		{"huge disk", Index{DiskSize: math.MaxInt64, ChunkSize: MaxChunkSize, Entries: []IndexEntry{{1<<40 - 1, id(9)}}},
			1 << 40, MaxChunkSize - 1, 32 + 32 + 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.ix.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != tc.size {
				t.Errorf("encoded %d bytes, want %d", len(b), tc.size)
			}
			if got := tc.ix.Chunks(); got != tc.chunks {
				t.Errorf("Chunks() = %d, want %d", got, tc.chunks)
			}
			if got := tc.ix.DataBytes(); got != tc.dataBytes {
				t.Errorf("DataBytes() = %d, want %d", got, tc.dataBytes)
			}
			got, err := UnmarshalIndex(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.DiskSize != tc.ix.DiskSize || got.ChunkSize != tc.ix.ChunkSize || len(got.Entries) != len(tc.ix.Entries) {
				t.Fatalf("decoded %+v", got)
			}
			if len(tc.ix.Entries) > 0 && !reflect.DeepEqual(got.Entries, tc.ix.Entries) {
				t.Fatalf("entries %v, want %v", got.Entries, tc.ix.Entries)
			}
			if b2, _ := got.MarshalBinary(); !bytes.Equal(b, b2) {
				t.Fatal("re-encoding differs")
			}
		})
	}
}

func TestIndexMarshalRejectsDisorder(t *testing.T) {
	for _, es := range [][]IndexEntry{
		{{N: 5}, {N: 3}},
		{{N: 5}, {N: 5}},
		{{N: 0}, {N: 2}, {N: 1}},
	} {
		ix := &Index{DiskSize: 10 * MinChunkSize, ChunkSize: MinChunkSize, Entries: es}
		if b, err := ix.MarshalBinary(); err == nil {
			t.Errorf("entries %v: encoded %x, want an error", es, b)
		}
	}
}

func TestUnmarshalIndexRejects(t *testing.T) {
	good, err := (&Index{DiskSize: 2 * MinChunkSize, ChunkSize: MinChunkSize,
		Entries: []IndexEntry{{N: 0, ID: ChunkID{1}}, {N: 1, ID: ChunkID{2}}}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalIndex(good); err != nil {
		t.Fatalf("valid index: %v", err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := map[string][]byte{
		"empty":          nil,
		"short header":   good[:31],
		"bad magic":      mod(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version 2":      mod(func(b []byte) []byte { b[4] = 2; return b }),
		"negative size":  mod(func(b []byte) []byte { b[15] = 0x80; return b }),
		"chunk size 0":   mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], 0); return b }),
		"chunk size odd": mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], MinChunkSize+1); return b }),
		"chunk size big": mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], 2*MaxChunkSize); return b }),
		"reserved":       mod(func(b []byte) []byte { b[20] = 1; return b }),
		// The disk has 2 chunks; 3 entries cannot fit even with the bytes present.
		"count > chunks": mod(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[24:], 3)
			return append(b, append([]byte{0}, make([]byte, 32)...)...)
		}),
		"count > bytes":  mod(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[24:], 1<<40); return b }),
		"count < stored": mod(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[24:], 1); return b }),
		"entry past end": mod(func(b []byte) []byte { b[32+33] = 1; return b }), // second entry becomes chunk 2
		"truncated id":   good[:len(good)-1],
		"trailing byte":  append(bytes.Clone(good), 0),
		"overlong gap":   mod(func(b []byte) []byte { return append(append(b[:32], 0x80, 0x00), b[33:]...) }),
	}
	for name, b := range tests {
		if ix, err := UnmarshalIndex(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %+v, %v; want ErrCorrupt", name, ix, err)
		}
	}
}

func TestIndexAccessors(t *testing.T) {
	const cs = MinChunkSize
	ix := &Index{DiskSize: 5*cs + 7, ChunkSize: cs, Entries: []IndexEntry{{1, ChunkID{1}}, {2, ChunkID{2}}, {5, ChunkID{5}}}}
	lens := map[uint64]int{0: cs, 1: cs, 4: cs, 5: 7}
	for n, want := range lens {
		if got := ix.ChunkLen(n); got != want {
			t.Errorf("ChunkLen(%d) = %d, want %d", n, got, want)
		}
	}
	if got := ix.Chunks(); got != 6 {
		t.Errorf("Chunks() = %d, want 6", got)
	}
	for n := uint64(0); n < 8; n++ {
		id, ok := ix.Lookup(n)
		wantOK := n == 1 || n == 2 || n == 5
		if ok != wantOK || ok && id != (ChunkID{byte(n)}) || !ok && id != (ChunkID{}) {
			t.Errorf("Lookup(%d) = %v, %v", n, id, ok)
		}
	}
	if got := ix.DataBytes(); got != 2*cs+7 {
		t.Errorf("DataBytes() = %d, want %d", got, 2*cs+7)
	}
	exact := &Index{DiskSize: 4 * cs, ChunkSize: cs}
	if exact.Chunks() != 4 || exact.ChunkLen(3) != cs {
		t.Errorf("exact multiple: Chunks %d, ChunkLen(3) %d", exact.Chunks(), exact.ChunkLen(3))
	}
	if _, ok := (&Index{ChunkSize: cs}).Lookup(0); ok {
		t.Error("lookup in an empty index succeeded")
	}
}
