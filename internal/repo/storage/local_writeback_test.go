package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLocalSaveStartsWriteback: every saved file gets its write-back
// started once all its bytes are written, before it is renamed into place
// (so Sync's fsync before a commit finds little left), and the content
// stays as saved.
func TestLocalSaveStartsWriteback(t *testing.T) {
	ctx := context.Background()
	l, dir := newLocal(t)
	type kicked struct {
		dir, name string
		data      []byte
	}
	var got []kicked
	l.kick = func(f *os.File) {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Errorf("read the kicked file: %v", err)
		}
		got = append(got, kicked{filepath.Dir(f.Name()), filepath.Base(f.Name()), b})
		startWriteback(f) // the real hint must not disturb the file either
	}
	files := map[string][]byte{"chunks/ab/abcd": bytes.Repeat([]byte{1}, 3<<20), "points/p1": []byte("manifest")}
	for _, name := range []string{"chunks/ab/abcd", "points/p1"} {
		if err := l.Save(ctx, name, files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d write-back hints, want one per saved file", len(got))
	}
	for i, name := range []string{"chunks/ab/abcd", "points/p1"} {
		want := filepath.Dir(filepath.Join(dir, name))
		if got[i].dir != want || !strings.HasPrefix(got[i].name, tmpPrefix) || !bytes.Equal(got[i].data, files[name]) {
			t.Errorf("hint %d: %s/%s with %d bytes, want the complete temporary file of %s", i, got[i].dir, got[i].name, len(got[i].data), name)
		}
		if b, err := l.Load(ctx, name); err != nil || !bytes.Equal(b, files[name]) {
			t.Errorf("%s: %d bytes, %v", name, len(b), err)
		}
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}
