package repo

import (
	"encoding/binary"
	"slices"
	"testing"
)

// idOf returns a distinct ID for n whose first byte is shard.
func idOf(shard byte, n uint32) ChunkID {
	var id ChunkID
	id[0] = shard
	binary.BigEndian.PutUint32(id[1:], n)
	id[31] = byte(n) // distinct beyond the prefix too
	return id
}

func TestChunkSet(t *testing.T) {
	many := func(n int, shard func(int) byte) []ChunkID {
		var out []ChunkID
		for i := range n {
			out = append(out, idOf(shard(i), uint32(i)))
		}
		return out
	}
	spread := many(5000, func(i int) byte { return byte(i * 7) })
	oneShard := many(5000, func(int) byte { return 0xab })
	reversed := slices.Clone(oneShard)
	slices.Reverse(reversed)
	cases := []struct {
		name   string
		adds   [][]ChunkID // added in this order
		want   []ChunkID   // the set
		absent []ChunkID
	}{
		{name: "empty", absent: []ChunkID{idOf(0, 1), {}}},
		{name: "one", adds: [][]ChunkID{{idOf(3, 9)}}, want: []ChunkID{idOf(3, 9)}, absent: []ChunkID{idOf(3, 8), idOf(4, 9)}},
		{name: "duplicates in one run", adds: [][]ChunkID{{idOf(1, 1), idOf(1, 1), idOf(0, 2), idOf(1, 1)}},
			want: []ChunkID{idOf(0, 2), idOf(1, 1)}},
		{name: "same points again and again (merges with duplicates)",
			adds: [][]ChunkID{oneShard, reversed, oneShard, oneShard[:10]}, want: oneShard, absent: []ChunkID{idOf(0xab, 6000)}},
		{name: "overlapping points across shards",
			adds: [][]ChunkID{spread[:3000], spread[2000:], spread[1000:4000]}, want: spread,
			absent: []ChunkID{idOf(1, 1), idOf(0, 5001)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b ChunkSetBuilder
			for _, run := range c.adds {
				for _, id := range run {
					b.Add(id)
				}
			}
			s := b.Set()
			want := slices.Clone(c.want)
			slices.SortFunc(want, compareID)
			if s.Len() != len(want) {
				t.Fatalf("Len = %d, want %d", s.Len(), len(want))
			}
			var got []ChunkID
			s.All(func(pos int, id ChunkID) {
				if pos != len(got) {
					t.Fatalf("position %d for the %d-th ID", pos, len(got))
				}
				if p, ok := s.Pos(id); !ok || p != pos {
					t.Fatalf("Pos(%s) = %d, %v; want %d, true", id, p, ok, pos)
				}
				got = append(got, id)
			})
			if !slices.Equal(got, want) {
				t.Fatalf("All gave %d IDs, not the sorted, deduplicated %d", len(got), len(want))
			}
			for _, id := range want {
				if !s.Has(id) {
					t.Errorf("Has(%s) = false", id)
				}
			}
			for _, id := range c.absent {
				if s.Has(id) {
					t.Errorf("Has(%s) = true for an ID never added", id)
				}
			}
		})
	}
}

func TestMergeSorted(t *testing.T) {
	a := []ChunkID{idOf(0, 1), idOf(0, 3), idOf(0, 5)}
	p := []ChunkID{idOf(0, 0), idOf(0, 3), idOf(0, 6)}
	got := mergeSorted(a, p)
	want := []ChunkID{idOf(0, 0), idOf(0, 1), idOf(0, 3), idOf(0, 5), idOf(0, 6)}
	if !slices.Equal(got, want) {
		t.Fatalf("merge = %v, want %v", got, want)
	}
	if got := mergeSorted(nil, p); !slices.Equal(got, p) || &got[0] == &p[0] {
		t.Fatal("merge into an empty set must copy the pending IDs")
	}
}

func TestBitmap(t *testing.T) {
	b := newBitmap(130)
	for _, i := range []int{0, 63, 64, 129} {
		b.set(i)
	}
	for i := range 130 {
		want := i == 0 || i == 63 || i == 64 || i == 129
		if b.has(i) != want {
			t.Fatalf("bit %d = %v", i, b.has(i))
		}
	}
}
