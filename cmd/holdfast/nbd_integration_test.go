package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (run scripts/setup)", tool)
		}
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// serveNBD exports img read-only over a unix socket with qemu-nbd until the
// returned stop function is called.
func serveNBD(t *testing.T, sock, img string, extra ...string) func() {
	t.Helper()
	args := append([]string{"-r", "-t", "-f", "qcow2", "-k", sock}, extra...)
	cmd := exec.Command("qemu-nbd", append(args, img)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			os.Remove(sock)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestNBDSourceWithBitmap backs up a qcow2 disk through qemu-nbd, then
// again using its persistent dirty bitmap as CBT: the incremental reads
// only the dirty chunks and both points restore exactly.
func TestNBDSourceWithBitmap(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io", "qemu-nbd")
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	q := filepath.Join(e.dir, "d.qcow2")
	sock := filepath.Join(e.dir, "nbd.sock")
	url := "nbd+unix:///?socket=" + sock
	sh(t, "qemu-img", "create", "-q", "-f", "qcow2", q, "64M")
	sh(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 8M", "-c", "write -P 0x33 40M 2M", q)
	sh(t, "qemu-img", "bitmap", "--add", q, "bm0")

	stop := serveNBD(t, sock, q, "-B", "bm0")
	b1 := e.backupJSON("vmn", "--bitmap", "bm0", url)
	stop()
	d := b1.Disks[0]
	if d.Transport != "nbd" || d.BytesRead != 10<<20 || !strings.Contains(d.CBT, "no previous") {
		t.Fatalf("first backup: %+v", d)
	}
	raw1 := filepath.Join(e.dir, "v1.raw")
	sh(t, "qemu-img", "convert", "-O", "raw", q, raw1)

	// Guest writes after the first backup: 64 KiB at 1M, 300 KiB at 50M.
	sh(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x77 1M 64k", "-c", "write -P 0x78 50M 300k", q)
	stop = serveNBD(t, sock, q, "-B", "bm0")
	b2 := e.backupJSON("vmn", "--bitmap", "bm0", url)
	stop()
	d = b2.Disks[0]
	// Dirty: [1M,1M+64K) -> one 256K chunk; [50M,50M+300K) -> two chunks.
	if d.CBT != "used" || d.BytesRead != 3*256<<10 {
		t.Fatalf("incremental: cbt %q, read %d bytes, want 3 chunks", d.CBT, d.BytesRead)
	}
	raw2 := filepath.Join(e.dir, "v2.raw")
	sh(t, "qemu-img", "convert", "-O", "raw", q, raw2)
	for ref, want := range map[string]string{b1.Point: raw1, b2.Point: raw2} {
		out := filepath.Join(e.dir, "out-"+ref+".img")
		e.ok("restore", ref, "--to", out)
		sameFile(t, want, out)
	}
}
