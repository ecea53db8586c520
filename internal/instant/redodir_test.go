package instant

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

func TestSessionDir(t *testing.T) {
	parent := t.TempDir()
	user := filepath.Join(parent, "notes.txt")
	if err := os.WriteFile(user, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := NewID()
	created := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	reg := Registry{Clock: clock.NewFake(created)}
	dir, s, err := reg.SessionDir(parent, id)
	if err != nil || dir != filepath.Join(parent, id) || s != id {
		t.Fatalf("SessionDir(parent): %s %s %v", dir, s, err)
	}
	var mk marker
	if b, err := os.ReadFile(filepath.Join(dir, RedoMarker)); err != nil || json.Unmarshal(b, &mk) != nil || !mk.Created.Equal(created) {
		t.Errorf("marker %+v (%v), want created %v on the registry's clock", mk, err, created)
	}
	// Named again, or by its own path, the session directory is resumed.
	for _, d := range []string{parent, dir} {
		got, s, err := reg.SessionDir(d, map[string]string{parent: id, dir: NewID()}[d])
		if err != nil || got != dir || s != id {
			t.Errorf("SessionDir(%s): %s %s %v, want %s %s", d, got, s, err, dir, id)
		}
	}
	// A directory Holdfast did not make is never taken over.
	stray := NewID()
	if err := os.Mkdir(filepath.Join(parent, stray), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.SessionDir(parent, stray); !errors.Is(err, ErrNotRedoDir) {
		t.Errorf("stray directory: %v", err)
	}
	if _, _, err := reg.SessionDir(parent, "../x"); err == nil {
		t.Error("an invalid ID was accepted")
	}
}

func TestRemoveRedo(t *testing.T) {
	type tc struct {
		name     string
		extra    []string // files added to the session directory
		keepVM   bool
		noMarker bool
		wantErr  bool
		wantLeft []string
		gone     bool // the session directory is gone
	}
	for _, c := range []tc{
		{name: "all ours", gone: true},
		{name: "a user file stays", extra: []string{"mine.txt"}, wantLeft: []string{"mine.txt"}},
		{name: "migrated VM runs on", keepVM: true, wantLeft: []string{"console.log", "qemu.log", "qmp.sock"}},
		{name: "no marker", noMarker: true, wantErr: true},
		{name: "libvirt logs are ours", extra: []string{"console-0.log", "console-12.log"}, gone: true},
		{name: "a migrated domain logs on", extra: []string{"console-0.log", "console-x.log"}, keepVM: true,
			wantLeft: []string{"console-0.log", "console-x.log", "console.log", "qemu.log", "qmp.sock"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			if err := os.WriteFile(filepath.Join(parent, "keep.txt"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			id := NewID()
			dir, _, err := Registry{}.SessionDir(parent, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "disk-0"), 0o700); err != nil {
				t.Fatal(err)
			}
			for _, f := range append([]string{"point.json", "serve.log", "qmp.sock", "console.log", "qemu.log", "disk-0/redo.img"}, c.extra...) {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if c.noMarker {
				if err := os.Remove(filepath.Join(dir, RedoMarker)); err != nil {
					t.Fatal(err)
				}
			}
			left, err := RemoveRedo(dir, id, c.keepVM)
			if c.wantErr {
				if !errors.Is(err, ErrNotRedoDir) {
					t.Fatalf("err %v, want ErrNotRedoDir", err)
				}
				if _, err := os.Stat(filepath.Join(dir, "disk-0", "redo.img")); err != nil {
					t.Errorf("redo data of an unmarked directory deleted: %v", err)
				}
				return
			}
			if err != nil || !slices.Equal(left, c.wantLeft) {
				t.Fatalf("left %v %v, want %v", left, err, c.wantLeft)
			}
			if _, err := os.Stat(dir); c.gone != os.IsNotExist(err) {
				t.Errorf("session directory gone: %v, want %v", os.IsNotExist(err), c.gone)
			}
			if _, err := os.Stat(filepath.Join(dir, "disk-0")); !os.IsNotExist(err) {
				t.Errorf("overlay left: %v", err)
			}
			if _, err := os.Stat(filepath.Join(parent, "keep.txt")); err != nil {
				t.Errorf("a file next to the session directory was deleted: %v", err)
			}
		})
	}
	if _, err := RemoveRedo(t.TempDir(), NewID(), false); !errors.Is(err, ErrNotRedoDir) {
		t.Errorf("another directory: %v", err)
	}
}
