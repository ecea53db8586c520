package guestimg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Segment is where part of a logical volume lies on its physical volume.
type Segment struct {
	LV     int64 // offset in the logical volume
	PV     int64 // offset in the physical volume image
	Length int64
}

// SplitLV makes a 64 MiB LVM physical volume image holding volume group
// vg (4 MiB extents) with two linear logical volumes made by the real LVM
// tools: "data", of len(data) bytes (a multiple of 4 MiB, more than
// 12 MiB), in two segments with "other" (8 MiB, left empty) between them;
// and it writes data where the tools say data's segments lie. It needs
// root and a loop device (skips without them); LVM sees only that device
// and writes nothing to /etc/lvm. The device is detached before it returns.
func SplitLV(t testing.TB, vg string, data []byte) (pvImg string, segs []Segment) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making an LVM physical volume needs root and a loop device")
	}
	Need(t, "losetup", "pvcreate", "vgcreate", "lvcreate", "lvextend", "lvs", "pvs", "vgexport")
	if n := int64(len(data)); n%(4<<20) != 0 || n <= 12<<20 || n > 48<<20 {
		t.Fatalf("guestimg: SplitLV of %d bytes: want a multiple of 4 MiB in (12, 48] MiB", n)
	}
	pvImg = filepath.Join(t.TempDir(), "pv.img")
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
	defer func() {
		if attached { // only the device this test attached, never a later one of the same name
			_ = exec.Command("losetup", "-d", loop).Run()
		}
	}()
	lvm := func(args ...string) string {
		t.Helper()
		c := exec.Command(args[0], append([]string{"--devices", loop, "--config", "backup { backup = 0 archive = 0 }"}, args[1:]...)...)
		c.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1")
		var stderr strings.Builder
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s%s", args, err, out, stderr.String())
		}
		return string(out)
	}
	lvm("pvcreate", "-q", "-ff", "-y", loop)
	lvm("vgcreate", "-q", "-s", "4M", vg, loop)
	lvm("lvcreate", "--driverloaded", "n", "-q", "-an", "-Zn", "-L", "12M", "-n", "data", vg)
	lvm("lvcreate", "--driverloaded", "n", "-q", "-an", "-Zn", "-L", "8M", "-n", "other", vg)
	lvm("lvextend", "--driverloaded", "n", "-q", "-L", strconv.Itoa(len(data)>>20)+"M", vg+"/data")
	peStart, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(lvm("pvs", "--noheadings", "--units", "b", "-o", "pe_start", loop)), "B"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(lvm("lvs", "--noheadings", "--segments", "-o", "seg_start_pe,seg_pe_ranges", vg+"/data")), "\n") {
		var first, last int64
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("lvs line %q", line)
		}
		lvStart, _ := strconv.ParseInt(f[0], 10, 64)
		dev, rng, _ := strings.Cut(f[1], ":")
		if _, err := fmt.Sscanf(rng, "%d-%d", &first, &last); err != nil || dev != loop {
			t.Fatalf("lvs range %q: %v", f[1], err)
		}
		segs = append(segs, Segment{LV: lvStart << 22, PV: peStart + first<<22, Length: (last - first + 1) << 22})
	}
	lvm("vgexport", vg)
	if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
		t.Fatalf("losetup -d %s: %v %s", loop, err, out)
	}
	attached = false
	if len(segs) != 2 {
		t.Fatalf("data has %d segments, want 2 (the test needs a split LV)", len(segs))
	}
	for _, s := range segs {
		CopyBytes(t, pvImg, data[s.LV:s.LV+s.Length], s.PV)
	}
	return pvImg, segs
}
