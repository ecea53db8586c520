package storage

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestLocalListNames: the names List gives, without temporary files, and
// nothing for a missing directory.
func TestLocalListNames(t *testing.T) {
	ctx := context.Background()
	l, dir := newLocal(t)
	for _, name := range []string{"chunks/ab/ab01", "chunks/ab/ab02", "chunks/cd/cd01", "points/p1"} {
		if err := l.Save(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "chunks", "ab", tmpPrefix+"left"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var listed, names []string
	if err := l.List(ctx, "chunks", func(fi FileInfo) error { listed = append(listed, fi.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := l.ListNames(ctx, "chunks", func(n string) error { names = append(names, n); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	slices.Sort(names)
	if want := []string{"chunks/ab/ab01", "chunks/ab/ab02", "chunks/cd/cd01"}; !slices.Equal(names, want) || !slices.Equal(listed, want) {
		t.Fatalf("ListNames %v, List %v; want %v", names, listed, want)
	}
	if err := l.ListNames(ctx, "nothing", func(string) error { t.Fatal("called"); return nil }); err != nil {
		t.Fatal(err)
	}
}
