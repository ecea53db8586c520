package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A mount directory that exists and is not this user's private directory
// (a symbolic link another user planted at the default path, or a
// directory others can write) is not mounted into.
func TestMountDirMustBePrivate(t *testing.T) {
	for name, plant := range map[string]func(t *testing.T, mountDir string){
		"symlink": func(t *testing.T, mountDir string) {
			if err := os.Symlink(t.TempDir(), mountDir); err != nil {
				t.Fatal(err)
			}
		},
		"world-writable": func(t *testing.T, mountDir string) {
			if err := os.Mkdir(mountDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(mountDir, 0o777); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake()
			gptWithLVM(f)
			s := fakeSession(t, f, 8<<20)
			plant(t, s.MountDir)
			err := s.attach(context.Background())
			if !errors.Is(err, ErrNotPrivate) {
				t.Errorf("attach: %v, want ErrNotPrivate", err)
			}
			if got := f.ran("mount"); len(got) != 0 {
				t.Errorf("mounted into a directory another user controls: %q", got)
			}
		})
	}
	// the user's own existing directory is used
	f := newFake()
	gptWithLVM(f)
	s := fakeSession(t, f, 8<<20)
	if err := os.Mkdir(s.MountDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.attach(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Records in a directory other users can write are not trusted: cleanup
// would unmount, detach and deactivate what they name.
func TestRecordsDirMustBePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	r := Records{Dir: dir}
	s := &Session{ID: NewID(), Steps: []Step{{Kind: stepMount, Path: "/somewhere", Done: true}}}
	if err := r.Save(s); err != nil {
		t.Fatal(err)
	}
	if _, err := r.List(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := r.List(); !errors.Is(err, ErrNotPrivate) {
		t.Errorf("list: %v, want ErrNotPrivate", err)
	}
	if _, err := r.Load(s.ID); !errors.Is(err, ErrNotPrivate) {
		t.Errorf("load: %v, want ErrNotPrivate", err)
	}
	if _, err := Cleanup(context.Background(), Env{Records: r, System: newFake()}); !errors.Is(err, ErrNotPrivate) {
		t.Errorf("cleanup: %v, want ErrNotPrivate", err)
	}
	if _, err := absDir(dir); !errors.Is(err, ErrNotPrivate) {
		t.Errorf("state dir for a new session: %v, want ErrNotPrivate", err)
	}
}
