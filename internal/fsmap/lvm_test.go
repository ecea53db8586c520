package fsmap

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/guestdisk"
)

// lvmTool runs an LVM command that writes only metadata (no device-mapper
// here: --driverloaded n where it applies).
func lvmTool(t *testing.T, dev string, args ...string) string {
	t.Helper()
	// LVM restricted to the test's own device (no scan of other tests' or
	// the host's devices, which would hold them busy) and nothing in /etc/lvm.
	args = append([]string{args[0], "--devices", dev, "--config", "backup { backup = 0 archive = 0 }"}, args[1:]...)
	need(t, args[0])
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

// TestLVMFreeMatchesDumpe2fs: an ext4 in a linear LV of two segments (the
// other LV between them) on a PV in a GPT partition; the free blocks are
// found through the LVM metadata, at the disk offsets the segments put
// them, exactly as dumpe2fs lists them.
func TestLVMFreeMatchesDumpe2fs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making an LVM physical volume needs root and a loop device")
	}
	need(t, "losetup", "pvcreate", "vgcreate", "lvcreate", "lvextend", "lvs", "pvs", "vgexport")
	pvImg := emptyImage(t, 64<<20)
	out, err := exec.Command("losetup", "--find", "--show", pvImg).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	attached := true
	t.Cleanup(func() {
		if attached { // only the device this test attached
			_ = exec.Command("losetup", "-d", loop).Run()
		}
	})
	vg := fmt.Sprintf("hf-fsmap%d", os.Getpid())
	lvmTool(t, loop, "pvcreate", "-q", "-ff", "-y", loop)
	lvmTool(t, loop, "vgcreate", "-q", "-s", "4M", vg, loop)
	lvmTool(t, loop, "lvcreate", "--driverloaded", "n", "-q", "-an", "-Zn", "-L", "12M", "-n", "data", vg)
	lvmTool(t, loop, "lvcreate", "--driverloaded", "n", "-q", "-an", "-Zn", "-L", "8M", "-n", "other", vg)
	lvmTool(t, loop, "lvextend", "--driverloaded", "n", "-q", "-L", "32M", vg+"/data")
	peStart, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(lvmTool(t, loop, "pvs", "--noheadings", "--units", "b", "-o", "pe_start", loop)), "B"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	segs := lvmTool(t, loop, "lvs", "--noheadings", "--segments", "-o", "seg_start_pe,seg_pe_ranges", vg+"/data")
	lvmTool(t, loop, "vgexport", vg)
	if err := exec.Command("losetup", "-d", loop).Run(); err != nil {
		t.Fatal(err)
	}
	attached = false

	fsImg := extImage(t, 32, "mkfs.ext4 -b 4096", "f1", "f3")
	fsBytes, err := os.ReadFile(fsImg)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := os.OpenFile(pvImg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	const partStart = 2048 * 512
	type seg struct{ lv, disk, n int64 }
	var mapping []seg
	for _, line := range strings.Split(strings.TrimSpace(segs), "\n") {
		var first, last int64
		f := strings.Fields(line)
		lvStart, _ := strconv.ParseInt(f[0], 10, 64)
		_, rng, _ := strings.Cut(f[1], ":")
		if _, err := fmt.Sscanf(rng, "%d-%d", &first, &last); err != nil {
			t.Fatalf("lvs range %q: %v", f[1], err)
		}
		s := seg{lv: lvStart << 22, disk: partStart + peStart + first<<22, n: (last - first + 1) << 22}
		if _, err := pv.WriteAt(fsBytes[s.lv:s.lv+s.n], s.disk-partStart); err != nil {
			t.Fatal(err)
		}
		mapping = append(mapping, s)
	}
	_ = pv.Close()
	if len(mapping) != 2 {
		t.Fatalf("data has %d segments, want 2", len(mapping))
	}
	img := assemble(t, 80, "label: gpt\nstart=2048, size=133120, type=lvm\n", map[int64]string{2048: pvImg})
	f, size := openImage(t, img)
	m, err := Find(context.Background(), f, size, Options{Free: true})
	if err != nil || len(m.Warnings) != 0 {
		t.Fatalf("warnings %q, error %v", m.Warnings, err)
	}
	var want []Range
	for _, r := range dumpe2fsFree(t, fsImg, 0) {
		for _, s := range mapping {
			from, to := max(r.Offset, s.lv), min(r.End(), s.lv+s.n)
			if from < to {
				want = append(want, Range{Offset: s.disk + from - s.lv, Length: to - from, Reason: ReasonFree})
			}
		}
	}
	if want = normalize(want, size); !reflect.DeepEqual(m.Ranges, want) || sum(want) < 12<<20 {
		t.Fatalf("got %d bytes in %v\nwant %d bytes in %v", sum(m.Ranges), head(m.Ranges), sum(want), head(want))
	}
}

// TestCheckVG: a volume group with a non-linear LV, a segment in a PV's
// metadata or two LVs on the same extents is kept whole.
func TestCheckVG(t *testing.T) {
	lin := func(name string, pvOff int64) guestdisk.LV {
		return guestdisk.LV{Name: name, Size: 4 << 20, Segments: []guestdisk.Segment{{Length: 4 << 20, PVUUID: "u", PVOffset: pvOff}}}
	}
	vg := func(lvs ...guestdisk.LV) *guestdisk.VG {
		return &guestdisk.VG{Name: "vg", PVs: map[string]int64{"pv0": 1 << 20}, PVUUIDs: map[string]string{"pv0": "u"}, LVs: lvs}
	}
	snap := lin("snap", 9<<20)
	snap.Err = fmt.Errorf("segment 1 is %q", "snapshot")
	tests := []struct {
		name string
		vg   *guestdisk.VG
		want string
	}{
		{"linear", vg(lin("a", 1<<20), lin("b", 5<<20)), ""},
		{"snapshot", vg(lin("a", 1<<20), snap), "not linear"},
		{"in metadata", vg(lin("a", 0)), "metadata"},
		{"overlap", vg(lin("a", 1<<20), lin("b", 3<<20)), "overlap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&pvSet{}).checkVG(tt.vg)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
