package nfs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNfsLs(t *testing.T) {
	needBins(t, "nfs-ls")
	srv := NewServer(Options{})
	exp, _, _ := testExport("/holdfast/x")
	if err := srv.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	r := serveT(t, srv)
	out := string(mustRun(t, "nfs-ls", r.url("/holdfast/x")))
	t.Logf("nfs-ls:\n%s", out)
	for _, want := range []string{"disk-0.img", "disk-1.img", "vm.json", "3146962", "-r--r--r--", "-rw-r--r--"} {
		if !strings.Contains(out, want) {
			t.Errorf("nfs-ls output lacks %q", want)
		}
	}
}

func TestNfsCp(t *testing.T) {
	needBins(t, "nfs-cp")
	srv := NewServer(Options{})
	exp, ro, rw := testExport("/holdfast/x")
	if err := srv.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	r := serveT(t, srv)
	dir := t.TempDir()

	t.Run("read", func(t *testing.T) {
		out := filepath.Join(dir, "disk-0.img")
		mustRun(t, "nfs-cp", r.url("/holdfast/x/disk-0.img"), out)
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, ro.bytes()) {
			t.Fatalf("read %d bytes, differ from the file's %d", len(got), len(ro.b))
		}
	})
	t.Run("write", func(t *testing.T) {
		src := filepath.Join(dir, "src.img")
		want := randomBytes(len(rw.b), 7)
		if err := os.WriteFile(src, want, 0o644); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "nfs-cp", src, r.url("/holdfast/x/disk-1.img"))
		if !bytes.Equal(rw.bytes(), want) {
			t.Fatal("WriterAt did not receive the copied bytes")
		}
	})
	t.Run("write read-only", func(t *testing.T) {
		src := filepath.Join(dir, "small")
		if err := os.WriteFile(src, []byte("hello"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := run(t, "nfs-cp", src, r.url("/holdfast/x/vm.json")); err == nil {
			t.Fatalf("write to a read-only file succeeded:\n%s", out)
		}
	})
}
