package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

func TestSpecPath(t *testing.T) {
	tests := []struct {
		spec, want string
		wantErr    bool
	}{
		{spec: "/var/lib/vm/a.img", want: "/var/lib/vm/a.img"},
		{spec: "rel/a.img", want: "rel/a.img"},
		{spec: "file:///var/lib/my%20vm/a%23b.img", want: "/var/lib/my vm/a#b.img"},
		{spec: "FILE:///a.img", want: "/a.img"},
		{spec: "file://localhost/a.img", want: "/a.img"},
		{spec: "", wantErr: true},
		{spec: "file://otherhost/a.img", wantErr: true},
		{spec: "file:relative.img", wantErr: true},
		{spec: "file:///a.img?x=1", wantErr: true},
		{spec: "file:///a.img#frag", wantErr: true},
		{spec: "file:///bad%zz", wantErr: true},
	}
	for _, tt := range tests {
		got, err := specPath(tt.spec)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("specPath(%q) = %q, %v; want %q, error %v", tt.spec, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.img")
	tests := []struct {
		name, spec   string
		wantNotFound bool
		wantInErr    string
	}{
		{name: "missing path", spec: missing, wantNotFound: true, wantInErr: missing},
		{name: "missing URL", spec: "file://" + missing, wantNotFound: true, wantInErr: missing},
		{name: "missing parent", spec: filepath.Join(dir, "no", "a.img"), wantNotFound: true},
		{name: "directory", spec: dir, wantInErr: "not a regular file"},
		{name: "char device", spec: "/dev/null", wantInErr: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(context.Background(), tt.spec, Options{})
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if errors.Is(err, source.ErrNotFound) != tt.wantNotFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v", err, !tt.wantNotFound)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantInErr)
			}
		})
	}
}

func TestOpenPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	path := filepath.Join(t.TempDir(), "secret.img")
	if err := os.WriteFile(path, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path, Options{})
	if err == nil || errors.Is(err, source.ErrNotFound) || !strings.Contains(err.Error(), path) ||
		!strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Open = %v, want a permission error naming %s", err, path)
	}
}

func TestOpenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, "/nonexistent", Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open = %v, want context.Canceled", err)
	}
}

func TestClassifyOpenError(t *testing.T) {
	perm := classifyOpenError("/vm/a.img", &os.PathError{Op: "open", Path: "/vm/a.img", Err: os.ErrPermission})
	if errors.Is(perm, source.ErrNotFound) || !errors.Is(perm, os.ErrPermission) ||
		!strings.Contains(perm.Error(), "/vm/a.img") || !strings.Contains(perm.Error(), "permission denied") {
		t.Errorf("permission error = %v", perm)
	}
	missing := classifyOpenError("/vm/a.img", &os.PathError{Op: "open", Path: "/vm/a.img", Err: os.ErrNotExist})
	if !errors.Is(missing, source.ErrNotFound) || !strings.Contains(missing.Error(), "/vm/a.img") {
		t.Errorf("not found error = %v", missing)
	}
}

func TestForcedFormat(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "raw-with-qcow2-header.img")
	// A raw disk whose guest wrote a qcow2 magic at sector 0.
	if err := os.WriteFile(fake, append([]byte("QFI\xfb"), make([]byte, 1<<16)...), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Open(context.Background(), fake, Options{Format: FormatRaw})
	if err != nil {
		t.Fatalf("forced raw: %v", err)
	}
	if f := d.Describe().Format; f != "raw" {
		t.Errorf("format %q, want raw", f)
	}
	d.Close()
	plain := filepath.Join(dir, "plain.img")
	if err := os.WriteFile(plain, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{FormatQcow2, FormatVMDK, "vhdx"} {
		if _, err := Open(context.Background(), plain, Options{Format: f}); err == nil {
			t.Errorf("format %q accepted a raw file", f)
		}
	}
}
