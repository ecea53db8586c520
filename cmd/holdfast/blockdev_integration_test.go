package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// loopDevice attaches a file to a loop device (root only) for the test.
func loopDevice(t *testing.T, file string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices")
	}
	out, err := exec.Command("losetup", "--find", "--show", file).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device available: %v %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// TestBlockDevices backs up from a block device and restores onto another
// one (only with --force) whose old content must be fully replaced (zeros
// included).
func TestBlockDevices(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	src := filepath.Join(e.dir, "src.img")
	writeImage(t, src, 16<<20, map[int64][]byte{0: pseudoRandom(5, 3<<20), 10 << 20: []byte("end marker")})
	srcDev := loopDevice(t, src)
	b := e.backupJSON("vmb", srcDev)
	if d := b.Disks[0]; d.Format != "block" || d.Size != 16<<20 {
		t.Fatalf("block device backup: %+v", d)
	}
	dst := filepath.Join(e.dir, "dst.img")
	garbage := pseudoRandom(6, 16<<20)
	writeImage(t, dst, 16<<20, map[int64][]byte{0: garbage}) // old garbage
	dstDev := loopDevice(t, dst)
	// A device is written in place: only with --force.
	if r := e.run("restore", b.Point, "--to", dstDev); r.code != exitUsage || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("restore onto a device without --force: exit %d, stderr %q", r.code, r.stderr)
	}
	if got, err := os.ReadFile(dstDev); err != nil || !bytes.Equal(got, garbage) {
		t.Fatalf("refused restore changed the device (%v)", err)
	}
	e.ok("restore", b.Point, "--to", dstDev, "--force")
	_ = exec.Command("losetup", "-d", dstDev).Run()
	sameFile(t, src, dst)
}
