package chunkcache

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func id(b ...byte) ID {
	var i ID
	copy(i[:], b)
	return i
}

func TestWriteOpenContains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c", "chunks")
	gen := Generation{1, 2, 3}
	if err := Write(path, gen, nil, []ID{id(9, 9), id(0, 1), id(0, 1, 5), id(0, 1)}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 || s.Generation() != gen {
		t.Fatalf("len %d gen %x", s.Len(), s.Generation())
	}
	// merge with more ids
	path2 := path + "2"
	if err := Write(path2, gen, s, []ID{id(0, 1, 4), id(255, 255, 255), id(9, 9)}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s2, err := Open(path2)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, tc := range []struct {
		id   ID
		want bool
	}{
		{id(0, 1), true}, {id(0, 1, 5), true}, {id(0, 1, 4), true}, {id(9, 9), true},
		{id(255, 255, 255), true}, {id(0, 1, 3), false}, {id(0, 2), false}, {id(), false}, {id(255, 255, 255, 1), false},
	} {
		got, err := s2.Contains(tc.id)
		if err != nil || got != tc.want {
			t.Errorf("Contains(%x) = %v, %v; want %v", tc.id[:4], got, err, tc.want)
		}
	}
	if s2.Len() != 5 {
		t.Errorf("merged len %d, want 5", s2.Len())
	}
}

func TestCorruptRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chunks")
	if err := Write(path, Generation{7}, nil, []ID{id(1), id(2), id(3)}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	swap := bytes.Clone(good)
	copy(swap[headerLen:], good[headerLen+idLen:headerLen+2*idLen])
	copy(swap[headerLen+idLen:], good[headerLen:headerLen+idLen])
	for name, b := range map[string][]byte{
		"flipped id bit":  flip(good, headerLen+5),
		"flipped gen bit": flip(good, 9),
		"bad magic":       flip(good, 0),
		"truncated":       good[:len(good)-1],
		"count too large": flip(good, 31),
		"out of order":    swap,
		"empty":           nil,
		"flipped sum":     flip(good, len(good)-1),
	} {
		if _, err := Decode(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := Decode(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatalf("good file: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func FuzzDecode(f *testing.F) {
	path := filepath.Join(f.TempDir(), "chunks")
	if err := Write(path, Generation{7}, nil, []ID{id(1), id(2, 3), id(200)}); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:headerLen])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// every id of a decoded set is found
		_ = s.each(func(i ID) error {
			if ok, err := s.Contains(i); !ok || err != nil {
				t.Fatalf("id %x not found: %v", i, err)
			}
			return nil
		})
	})
}

// TestWriteFailsMidMerge: a merge that fails part-way (here: the old set
// can no longer be read) leaves the previous file whole and valid.
func TestWriteFailsMidMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chunks")
	gen := Generation{4}
	if err := Write(path, gen, nil, []ID{id(1), id(2)}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close() // reading the old ids now fails mid-merge
	if err := Write(path, gen, s, []ID{id(0), id(3)}); err == nil {
		t.Fatal("merge from a closed set succeeded")
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatalf("cache after a failed merge: %v", err)
	}
	defer s2.Close()
	if s2.Len() != 2 {
		t.Fatalf("cache after a failed merge holds %d ids, want the old 2", s2.Len())
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("directory holds %v: a temporary file was left", ents)
	}
}
