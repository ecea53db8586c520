package storage

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func newLocal(t *testing.T) (*Local, string) {
	dir := filepath.Join(t.TempDir(), "repo")
	return NewLocal(dir), dir
}

func TestLocalSaveLoad(t *testing.T) {
	ctx := context.Background()
	l, dir := newLocal(t)
	if l.Exists() {
		t.Fatal("root exists before the first save")
	}
	if err := l.Save(ctx, "chunks/ab/abcd", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if !l.Exists() || l.Location() != dir {
		t.Fatalf("Exists %v, Location %q", l.Exists(), l.Location())
	}
	if err := l.Save(ctx, "chunks/ab/abcd", []byte("second")); err != nil {
		t.Fatal(err)
	}
	b, err := l.Load(ctx, "chunks/ab/abcd")
	if err != nil || string(b) != "second" {
		t.Fatalf("load after overwrite: %q, %v", b, err)
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "chunks", "ab", "abcd")); err != nil || string(raw) != "second" {
		t.Fatalf("file content %q, %v", raw, err)
	}
	// No temporary file is left behind.
	ents, err := os.ReadDir(filepath.Join(dir, "chunks", "ab"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("directory holds %v, %v", ents, err)
	}
	fi, err := l.Stat(ctx, "chunks/ab/abcd")
	if err != nil || fi.Size != 6 || fi.Name != "chunks/ab/abcd" {
		t.Fatalf("stat %+v, %v", fi, err)
	}
	if err := l.Save(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if b, err := l.Load(ctx, "empty"); err != nil || len(b) != 0 {
		t.Fatalf("empty file: %q, %v", b, err)
	}
}

// TestLocalSaveAtomic: a reader running while a file is rewritten sees
// the old or the new content, never a mix or a short file.
func TestLocalSaveAtomic(t *testing.T) {
	ctx := context.Background()
	l, _ := newLocal(t)
	a, b := bytes.Repeat([]byte{'a'}, 1<<20), bytes.Repeat([]byte{'b'}, 1<<20)
	if err := l.Save(ctx, "f", a); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		for i := 0; i < 20; i++ {
			data := a
			if i%2 == 0 {
				data = b
			}
			if err := l.Save(ctx, "f", data); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for reading := true; reading; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			reading = false
		default:
		}
		got, err := l.Load(ctx, "f")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
			t.Fatalf("read a torn file of %d bytes", len(got))
		}
	}
}

func TestLocalNotExist(t *testing.T) {
	ctx := context.Background()
	l, _ := newLocal(t)
	if _, err := l.Load(ctx, "points/nope"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Load: %v", err)
	}
	if _, err := l.Stat(ctx, "points/nope"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Stat: %v", err)
	}
	if err := l.Touch(ctx, "points/nope"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Touch: %v", err)
	}
	if err := l.Rename(ctx, "points/nope", "points/other"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Rename: %v", err)
	}
	if err := l.Remove(ctx, "points/nope"); err != nil {
		t.Errorf("Remove of a missing file: %v", err)
	}
	n := 0
	if err := l.List(ctx, "points", func(FileInfo) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("List of a missing dir: %d, %v", n, err)
	}
}

func TestLocalRename(t *testing.T) {
	ctx := context.Background()
	l, _ := newLocal(t)
	for name, data := range map[string]string{"chunks/aa/x": "x", "chunks/aa/y": "y"} {
		if err := l.Save(ctx, name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Rename(ctx, "chunks/aa/x", "chunks/aa/y"); !errors.Is(err, ErrExist) {
		t.Fatalf("rename onto an existing file: %v", err)
	}
	for name, want := range map[string]string{"chunks/aa/x": "x", "chunks/aa/y": "y"} {
		if b, err := l.Load(ctx, name); err != nil || string(b) != want {
			t.Errorf("after refused rename %s = %q, %v", name, b, err)
		}
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(filepath.Join(l.Location(), "chunks/aa/x"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := l.Rename(ctx, "chunks/aa/x", "chunks/bb/x.gc"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Stat(ctx, "chunks/aa/x"); !errors.Is(err, ErrNotExist) {
		t.Errorf("source still there: %v", err)
	}
	fi, err := l.Stat(ctx, "chunks/bb/x.gc")
	if err != nil || !fi.ModTime.Equal(old) {
		t.Errorf("renamed file %+v, %v; want modification time %v kept", fi, err, old)
	}
}

func TestLocalTouch(t *testing.T) {
	ctx := context.Background()
	l, _ := newLocal(t)
	if err := l.Save(ctx, "f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-24 * time.Hour)
	if err := os.Chtimes(filepath.Join(l.Location(), "f"), old, old); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	if err := l.Touch(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	fi, err := l.Stat(ctx, "f")
	if err != nil || fi.ModTime.Before(before) {
		t.Errorf("after touch: %+v, %v", fi, err)
	}
}

func TestLocalListAndTemp(t *testing.T) {
	ctx := context.Background()
	l, dir := newLocal(t)
	for _, name := range []string{"chunks/aa/1", "chunks/bb/2", "chunks/3", "points/p"} {
		if err := l.Save(ctx, name, []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	oldTmp := filepath.Join(dir, "chunks", "aa", tmpPrefix+"old")
	newTmp := filepath.Join(dir, "chunks", tmpPrefix+"new")
	for _, p := range []string{oldTmp, newTmp} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(oldTmp, old, old); err != nil {
		t.Fatal(err)
	}
	var names []string
	err := l.List(ctx, "chunks", func(fi FileInfo) error {
		if fi.Size != int64(len(fi.Name)) {
			t.Errorf("%s: size %d", fi.Name, fi.Size)
		}
		names = append(names, fi.Name)
		return nil
	})
	slices.Sort(names)
	if want := []string{"chunks/3", "chunks/aa/1", "chunks/bb/2"}; err != nil || !slices.Equal(names, want) {
		t.Errorf("list = %q, %v; want %q", names, err, want)
	}
	stop := errors.New("stop")
	if err := l.List(ctx, "chunks", func(FileInfo) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error not returned: %v", err)
	}
	n, err := l.RemoveStaleTemp(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Errorf("RemoveStaleTemp = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(oldTmp); !os.IsNotExist(err) {
		t.Errorf("old temp file still there: %v", err)
	}
	if _, err := os.Stat(newTmp); err != nil {
		t.Errorf("recent temp file removed: %v", err)
	}
}

func TestLocalNames(t *testing.T) {
	ctx := context.Background()
	l, dir := newLocal(t)
	for _, bad := range []string{"", "/", ".", "..", `a\b`} {
		if err := l.Save(ctx, bad, []byte("x")); err == nil {
			t.Errorf("Save(%q) succeeded", bad)
		}
	}
	// Names are confined to the root.
	if err := l.Save(ctx, "../../escape", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err != nil {
		t.Errorf("../../escape not stored inside the root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); !os.IsNotExist(err) {
		t.Errorf("file written outside the root: %v", err)
	}
	if !strings.HasPrefix(l.Location(), filepath.Dir(dir)) {
		t.Errorf("location %q", l.Location())
	}
}

func TestLocalCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, _ := newLocal(t)
	if err := l.Save(ctx, "f", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Save: %v", err)
	}
	if _, err := l.Load(ctx, "f"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load: %v", err)
	}
}

func TestLocalSync(t *testing.T) {
	l, _ := newLocal(t)
	if err := l.Sync(context.Background()); err == nil {
		t.Error("sync of a missing root succeeded")
	}
	if err := l.Save(context.Background(), "f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(context.Background()); err != nil {
		t.Error(err)
	}
}
