package guestfiles

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// lvm runs an LVM command that writes only metadata (no device-mapper
// here: --driverloaded n) and returns its output.
func lvm(t *testing.T, dev string, args ...string) string {
	t.Helper()
	// LVM restricted to the test's own device (no scan of other tests' or
	// the host's devices, which would hold them busy) and nothing in /etc/lvm.
	args = append([]string{args[0], "--devices", dev, "--config", "backup { backup = 0 archive = 0 }"}, args[1:]...)
	c := exec.Command(args[0], args[1:]...)
	c.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1")
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s%s", args, err, out, stderr.String())
	}
	return string(out)
}

// TestLVM: a PV made by the real LVM tools on a loop device of our own,
// a VG with two LVs where "data" has two segments (the other LV between
// them), an ext4 filesystem written across the segments where the tools
// say they lie; the tree reads it as volume VG-data.
func TestLVM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making an LVM physical volume needs root and a loop device")
	}
	for _, tool := range []string{"losetup", "pvcreate", "vgcreate", "lvcreate"} {
		guesttree.Tool(t, tool)
	}
	dir := t.TempDir()
	pvImg := filepath.Join(dir, "pv.img")
	if err := os.WriteFile(pvImg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(pvImg, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", pvImg).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	attached := true
	t.Cleanup(func() {
		if attached { // only the device this test attached, never a later one of the same name
			_ = exec.Command("losetup", "-d", loop).Run()
		}
	})
	vg := fmt.Sprintf("hf-test%d", os.Getpid())
	lvm(t, loop, "pvcreate", "-q", "-ff", "-y", loop)
	lvm(t, loop, "vgcreate", "-q", "-s", "4M", vg, loop)
	lvm(t, loop, "lvcreate", "--driverloaded", "n", "-q", "-an", "-Zn", "-L", "12M", "-n", "data", vg)
	lvm(t, loop, "lvcreate", "--driverloaded", "n", "-q", "-an", "-Zn", "-L", "8M", "-n", "other", vg)
	lvm(t, loop, "lvextend", "--driverloaded", "n", "-q", "-L", "24M", vg+"/data")
	peStart, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(lvm(t, loop, "pvs", "--noheadings", "--units", "b", "-o", "pe_start", loop)), "B"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	segs := lvm(t, loop, "lvs", "--noheadings", "--segments", "-o", "seg_start_pe,seg_pe_ranges", vg+"/data")
	lvm(t, loop, "vgexport", vg)
	if err := exec.Command("losetup", "-d", loop).Run(); err != nil {
		t.Fatal(err)
	}
	attached = false

	src := guesttree.Build(t, t.TempDir(), guesttree.Options{BigDir: 30, Deep: 3, NoSparse: true})
	fsImg := guesttree.Ext4(t, src, 24)
	fs, err := os.ReadFile(fsImg)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := os.OpenFile(pvImg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(segs), "\n") {
		var lvStart, peFirst, peLast int64
		var dev string
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("lvs line %q", line)
		}
		lvStart, _ = strconv.ParseInt(f[0], 10, 64)
		dev, rng, _ := strings.Cut(f[1], ":")
		if _, err := fmt.Sscanf(rng, "%d-%d", &peFirst, &peLast); err != nil || dev != loop {
			t.Fatalf("lvs range %q: %v", f[1], err)
		}
		part := fs[lvStart<<22 : (lvStart+peLast-peFirst+1)<<22]
		if _, err := pv.WriteAt(part, peStart+peFirst<<22); err != nil {
			t.Fatal(err)
		}
		n++
	}
	_ = pv.Close()
	if n != 2 {
		t.Fatalf("data has %d segments, want 2 (the test needs a split LV)", n)
	}
	img := guesttree.Disk(t, 80, "label: gpt\nstart=2048, size=133120, type=lvm\n", map[int64]string{2048 * 512: pvImg})
	tr := openTree(t, img)
	v := tr.Single()
	if v == nil || v.Name != strings.ReplaceAll(vg, "-", "--")+"-data" {
		for _, x := range tr.Volumes {
			t.Logf("volume %s: %v", x.Name, x.Err)
		}
		t.Fatalf("no single readable LV")
	}
	dest := t.TempDir()
	if _, err := Restore(context.Background(), v.FS, []string{"/"}, dest, RestoreOptions{Owners: true, SetID: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dest, "lost+found")); err != nil {
		t.Fatal(err)
	}
	guesttree.Compare(t, src, dest, guesttree.CompareOptions{Owners: true, Times: true, Links: true})
	other := false
	for _, x := range tr.Volumes {
		if x.Name == strings.ReplaceAll(vg, "-", "--")+"-other" {
			other = x.FS == nil && x.Err != nil && x.Size == 8<<20
		}
	}
	if !other {
		t.Error("the LV without a filesystem is not listed as such")
	}
}
