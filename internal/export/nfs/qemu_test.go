package nfs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestQemuNFS reads a file through QEMU's nfs:// driver, which has no port
// options: it asks the portmapper on port 111 for MOUNT and NFS, and calls
// MOUNT EXPORT before MNT.
func TestQemuNFS(t *testing.T) {
	needBins(t, "qemu-img")
	if os.Geteuid() != 0 {
		t.Skip("QEMU's nfs:// driver needs the portmapper on port 111: run as root")
	}
	l, err := Listen("127.0.0.1", PortmapPort, 0, 0)
	if err != nil {
		t.Skipf("port 111 is not free on this machine (%v): QEMU's nfs:// driver needs it", err)
	}
	srv := NewServer(Options{})
	exp, ro, rw := testExport("/holdfast/qemu")
	ro.b = ro.b[:3<<20] // QEMU rounds sizes up to 512-byte sectors
	exp.Files[0].Size = int64(len(ro.b))
	if err := srv.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	serveOn(t, srv, l)

	url := "nfs://127.0.0.1/holdfast/qemu/disk-0.img"
	var info struct {
		VirtualSize int64  `json:"virtual-size"`
		Format      string `json:"format"`
	}
	out := mustRun(t, "qemu-img", "info", "--output=json", "-f", "raw", url)
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if info.VirtualSize != int64(len(ro.b)) || info.Format != "raw" {
		t.Fatalf("qemu-img info: %+v, want raw of %d bytes", info, len(ro.b))
	}

	dst := filepath.Join(t.TempDir(), "out.img")
	mustRun(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", url, dst)
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ro.bytes()) {
		t.Fatalf("qemu-img convert: %d bytes differ from the file's %d", len(got), len(ro.b))
	}

	// Writes through QEMU land in the WriterAt (no truncation involved).
	mustRun(t, "qemu-io", "-f", "raw", "-c", "write -P 0xab 4096 65536", "-c", "flush",
		"nfs://127.0.0.1/holdfast/qemu/disk-1.img")
	b := rw.bytes()
	if !bytes.Equal(b[4096:4096+65536], bytes.Repeat([]byte{0xab}, 65536)) || b[4095] != 0 || b[4096+65536] != 0 {
		t.Fatal("qemu-io write did not reach the WriterAt")
	}
}
