package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestBackupStreamOptimizedVMDK backs up a streamOptimized VMDK (an OVA's
// disk) made by qemu-img with the real binary and restores the raw bytes
// it was made from.
func TestBackupStreamOptimizedVMDK(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	src := filepath.Join(e.dir, "src.raw")
	sh(t, "qemu-img", "create", "-q", "-f", "raw", src, "24M")
	sh(t, "qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 3M", "-c", "write -P 0x33 20M 100k", src)
	vmdk := filepath.Join(e.dir, "disk.vmdk")
	sh(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, vmdk)

	b := e.backupJSON("ova", vmdk)
	if len(b.Disks) != 1 || b.Disks[0].Format != "vmdk-sparse" || b.Disks[0].Size != 24<<20 {
		t.Fatalf("backup = %+v, want one vmdk-sparse disk of 24 MiB", b.Disks)
	}
	out := filepath.Join(e.dir, "out.raw")
	e.ok("restore", b.Point, "--disk", "0", "--to", out)
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the restored disk differs from the raw source of the streamOptimized VMDK")
	}
}
