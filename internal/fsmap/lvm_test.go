package fsmap

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/guestdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/guestimg"
)

// TestLVMFreeMatchesDumpe2fs: an ext4 in a linear LV of two segments (the
// other LV between them) on a PV in a GPT partition; the free blocks are
// found through the LVM metadata, at the disk offsets the segments put
// them, exactly as dumpe2fs lists them.
func TestLVMFreeMatchesDumpe2fs(t *testing.T) {
	fsImg := extImage(t, 32, "mkfs.ext4 -b 4096", "f1", "f3")
	fsBytes, err := os.ReadFile(fsImg)
	if err != nil {
		t.Fatal(err)
	}
	pvImg, segs := guestimg.SplitLV(t, fmt.Sprintf("hf-fsmap%d", os.Getpid()), fsBytes)
	const partStart = 2048 * 512
	type seg struct{ lv, disk, n int64 }
	var mapping []seg
	for _, s := range segs {
		mapping = append(mapping, seg{lv: s.LV, disk: partStart + s.PV, n: s.Length})
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
