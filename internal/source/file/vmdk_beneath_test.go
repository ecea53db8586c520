package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestBeneathFiles(t *testing.T) {
	root := t.TempDir()
	vm := filepath.Join(root, "vm")
	outside := t.TempDir()
	for _, dir := range []string{vm, filepath.Join(root, "other")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(vm, "disk-flat.vmdk"), make([]byte, 4096))
	writeFile(t, filepath.Join(root, "other", "x-flat.vmdk"), make([]byte, 512))
	writeFile(t, filepath.Join(outside, "secret"), []byte("secret"))
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(vm, "link-flat.vmdk")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(vm, "fifo-flat.vmdk"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, closeDir, err := BeneathFiles(root, "vm")
	if err != nil {
		t.Fatal(err)
	}
	defer closeDir()
	f, err := files.OpenFile(context.Background(), "disk-flat.vmdk")
	if err != nil {
		t.Fatal(err)
	}
	if lf, ok := f.(*localFile); !ok || f.Size() != 4096 || !lf.regular {
		t.Errorf("OpenFile = %T of %d bytes, want a regular local file of 4096 (holes found with SEEK_DATA)", f, f.Size())
	}
	f.Close()
	for name, want := range map[string]string{
		"../other/x-flat.vmdk":           ErrEscape.Error(),
		"link-flat.vmdk":                 ErrEscape.Error(),
		filepath.Join(outside, "secret"): ErrEscape.Error(),
		"fifo-flat.vmdk":                 "named pipe",
		"missing.vmdk":                   "no such file",
	} {
		if f, err := files.OpenFile(context.Background(), name); err == nil || !strings.Contains(err.Error(), want) {
			if f != nil {
				f.Close()
			}
			t.Errorf("OpenFile(%q) = %v, want an error containing %q", name, err, want)
		}
	}
	for _, dir := range []string{"..", "linkdir", "vm/../.."} {
		if _, _, err := BeneathFiles(root, dir); !errors.Is(err, ErrEscape) {
			t.Errorf("BeneathFiles(root, %q) = %v, want ErrEscape", dir, err)
		}
	}
}
