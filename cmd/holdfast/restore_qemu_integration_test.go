package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// guestWrites touches exactly 6 chunks of 256 KiB of a disk holding data in
// [0, 8M) and [40M, 42M): one data chunk at 1M, two zero chunks at 50M, the
// data/zero boundary at 8M (two chunks) and a data chunk zeroed at 40M.
var guestWrites = []string{
	"-c", "write -P 0x77 1M 64k",
	"-c", "write -P 0x78 50M 300k",
	"-c", "write -P 0x79 8188k 8k",
	"-c", "write -z 40M 256k",
}

// qcowDataBytes sums the extents qemu-img map reports as data.
func qcowDataBytes(t *testing.T, img string) int64 {
	t.Helper()
	var ext []struct {
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
	}
	if err := json.Unmarshal([]byte(sh(t, "qemu-img", "map", "--output=json", "-f", "qcow2", img)), &ext); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, x := range ext {
		if x.Data {
			n += x.Length
		}
	}
	return n
}

func qcowSource(t *testing.T, e *env) (string, string) {
	t.Helper()
	q := filepath.Join(e.dir, "vm.qcow2")
	sh(t, "qemu-img", "create", "-q", "-f", "qcow2", q, "64M")
	sh(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 8M", "-c", "write -P 0x33 40M 2M", q)
	return q, e.backupJSON("vmq", q).Point
}

// TestRestoreQcow2 restores a qcow2-backed disk to a new, sparse qcow2
// image equal to the source.
func TestRestoreQcow2(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io", "qemu-nbd")
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	src, point := qcowSource(t, e)

	out := filepath.Join(e.dir, "out.qcow2")
	if o := e.ok("restore", point, "--disk", "0", "--to", out); !strings.Contains(o, "restored disk 0") {
		t.Fatalf("restore output %q", o)
	}
	sh(t, "qemu-img", "compare", src, out)
	sh(t, "qemu-img", "check", "-q", out)
	if n := qcowDataBytes(t, out); n != 10<<20 {
		t.Errorf("restored qcow2 maps %d data bytes, want %d", n, 10<<20)
	}
	if fi, _ := os.Stat(out); fi.Size() > 12<<20 {
		t.Errorf("restored qcow2 is %d bytes: not sparse", fi.Size())
	}

	// --to-format overrides the name; the format is qcow2, not raw.
	img := filepath.Join(e.dir, "out.img")
	e.ok("restore", point, "--to", img, "--to-format", "qcow2")
	if info := sh(t, "qemu-img", "info", img); !strings.Contains(info, "file format: qcow2") {
		t.Fatalf("--to-format qcow2 wrote:\n%s", info)
	}
	sh(t, "qemu-img", "compare", src, img)
	raw := filepath.Join(e.dir, "out.qcow2.raw")
	e.ok("restore", point, "--to", raw)
	sh(t, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", src, raw)

	if r := e.run("restore", point, "--to", img, "--to-format", "vmdk"); r.code != exitUsage {
		t.Errorf("--to-format vmdk: exit %d, want %d", r.code, exitUsage)
	}
}

// TestRollbackQcow2 rolls a modified qcow2 image back to the point,
// rewriting only the chunks the guest touched.
func TestRollbackQcow2(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io", "qemu-nbd")
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	src, point := qcowSource(t, e)
	orig := filepath.Join(e.dir, "orig.qcow2")
	e.ok("restore", point, "--to", orig)

	sh(t, "qemu-io", append([]string{"-f", "qcow2"}, append(guestWrites, src)...)...)
	if err := exec.Command("qemu-img", "compare", "-q", src, orig).Run(); err == nil {
		t.Fatal("guest writes changed nothing")
	}
	o := e.ok("restore", point, "--to", src, "--rollback")
	if want := "compared 256 chunks, rewrote 6 ("; !strings.Contains(o, want) {
		t.Fatalf("rollback output %q, want %q", o, want)
	}
	sh(t, "qemu-img", "compare", src, orig)
	sh(t, "qemu-img", "check", "-q", src)
	if o := e.ok("restore", point, "--to", src, "--rollback"); !strings.Contains(o, "rewrote 0 (") {
		t.Errorf("second rollback output %q, want nothing rewritten", o)
	}

	// A running VM holds the image lock: the rollback is refused.
	sock := filepath.Join(e.dir, "vm.sock")
	serveNBDWritable(t, sock, src)
	r := e.run("restore", point, "--to", src, "--rollback")
	if r.code != exitFailure || !strings.Contains(r.stderr, "VM still running") {
		t.Errorf("rollback of a locked image: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestRollbackRaw rolls a modified raw image back to the point.
func TestRollbackRaw(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io", "qemu-nbd")
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	_, point := qcowSource(t, e)
	orig := filepath.Join(e.dir, "orig.raw")
	disk := filepath.Join(e.dir, "disk.raw")
	e.ok("restore", point, "--to", orig)
	e.ok("restore", point, "--to", disk)

	sh(t, "qemu-io", append([]string{"-f", "raw"}, append(guestWrites, disk)...)...)
	o := e.ok("restore", point, "--to", disk, "--rollback")
	if want := "compared 256 chunks, rewrote 6 ("; !strings.Contains(o, want) {
		t.Fatalf("rollback output %q, want %q", o, want)
	}
	sameFile(t, orig, disk)

	for name, tc := range map[string]struct {
		args []string
		msg  string
	}{
		"missing":    {[]string{"--to", filepath.Join(e.dir, "none.raw")}, "needs an existing disk"},
		"too large":  {[]string{"--to", grow(t, e, orig)}, "same size"},
		"qcow2 name": {[]string{"--to", copyAs(t, e, "orig.raw", "raw.qcow2")}, "not a qcow2 image"},
		"qcow2 data": {[]string{"--to", copyAs(t, e, "vm.qcow2", "q.raw")}, "looks like a qcow2"},
	} {
		r := e.run(append([]string{"restore", point, "--rollback"}, tc.args...)...)
		if r.code != exitFailure || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%s: exit %d, stderr %q, want %q", name, r.code, r.stderr, tc.msg)
		}
	}
}

// grow copies img with one extra byte.
func grow(t *testing.T, e *env, img string) string {
	t.Helper()
	p := copyAs(t, e, filepath.Base(img), "grown.raw")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _ = f.Write([]byte{1})
	return p
}

func copyAs(t *testing.T, e *env, from, to string) string {
	t.Helper()
	p := filepath.Join(e.dir, to)
	sh(t, "cp", "--sparse=always", filepath.Join(e.dir, from), p)
	return p
}

// serveNBDWritable holds img open for writing with qemu-nbd, as a running
// VM would, until the test ends.
func serveNBDWritable(t *testing.T, sock, img string) {
	t.Helper()
	cmd := exec.Command("qemu-nbd", "-t", "-f", "qcow2", "-k", sock, img)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("qemu-nbd did not start")
}
