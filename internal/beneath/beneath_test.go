package beneath

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpen(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "d", "f"), []byte("f"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d", filepath.Join(root, "dirlink")); err != nil {
		t.Fatal(err)
	}
	rfd, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	for _, tc := range []struct {
		rel  string
		want error
	}{
		{"d/f", nil},
		{"d/../d/f", nil},
		{"../" + filepath.Base(outside) + "/secret", ErrEscape},
		{filepath.Join(outside, "secret"), ErrEscape},
		{"link", ErrEscape},
		{"dirlink/f", ErrEscape},
		{"missing", unix.ENOENT},
		{"d/f/x", unix.ENOTDIR},
	} {
		fd, err := Open(rfd, tc.rel, unix.O_RDONLY)
		if tc.want == nil {
			if err != nil {
				t.Errorf("Open(%q) = %v", tc.rel, err)
				continue
			}
			_ = unix.Close(fd)
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("Open(%q) = %v, want %v", tc.rel, err, tc.want)
		}
	}
	if _, err := OpenRoot(filepath.Join(root, "missing")); !errors.Is(err, unix.ENOENT) {
		t.Errorf("OpenRoot(missing) = %v", err)
	}
}
