package fsmap

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/holdfast-backup/holdfast/internal/guestdisk"
)

// pvSet is the LVM physical volumes found on a disk's partitions.
type pvSet struct {
	readers map[string]io.ReaderAt // by PV UUID: the PV's volume
	sizes   map[string]int64
	starts  map[string]int64 // the PV's offset in the disk
	vgs     map[string]*guestdisk.VG
	order   []string
}

// lvmRanges returns the excluded ranges of the file systems in the linear
// logical volumes of the LVM physical volumes among vols, as disk
// offsets. A volume group that holds any other kind of LV (snapshot, thin,
// RAID, cache: their extents may be other LVs' data) or whose extents
// overlap is kept whole, with a warning.
func lvmRanges(ctx context.Context, r io.ReaderAt, vols []guestdisk.Volume, o Options, m *Map) error {
	set := pvSet{readers: map[string]io.ReaderAt{}, sizes: map[string]int64{}, starts: map[string]int64{},
		vgs: map[string]*guestdisk.VG{}}
	for _, v := range vols {
		if v.Content != guestdisk.ContentLVM {
			continue
		}
		pv, err := guestdisk.ReadPV(v.Section(r), v.Size)
		if err != nil {
			m.Warnings = append(m.Warnings, fmt.Sprintf("partition %d (LVM): nothing excluded: %v", v.Partition, err))
			continue
		}
		set.readers[pv.UUID], set.sizes[pv.UUID], set.starts[pv.UUID] = v.Section(r), v.Size, v.Start
		if old, ok := set.vgs[pv.VG.Name]; !ok || pv.VG.Seqno > old.Seqno {
			if !ok {
				set.order = append(set.order, pv.VG.Name)
			}
			vg := pv.VG
			set.vgs[pv.VG.Name] = &vg
		}
	}
	for _, name := range set.order {
		if err := set.vgRanges(ctx, set.vgs[name], o, m); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m.Warnings = append(m.Warnings, fmt.Sprintf("volume group %s: nothing excluded: %v", name, err))
		}
	}
	return nil
}

// vgRanges adds the excluded ranges of one volume group's LVs to m.
func (s *pvSet) vgRanges(ctx context.Context, vg *guestdisk.VG, o Options, m *Map) error {
	if err := s.checkVG(vg); err != nil {
		return err
	}
	for _, lv := range vg.LVs {
		lr, err := guestdisk.NewLVReader(lv, s.readers, s.sizes)
		if err != nil {
			m.Warnings = append(m.Warnings, fmt.Sprintf("logical volume %s/%s: nothing excluded: %v", vg.Name, lv.Name, err))
			continue
		}
		v := guestdisk.Volume{Size: lv.Size, Content: guestdisk.Probe(lr, lv.Size), Name: vg.Name + "/" + lv.Name}
		rs, err := volumeRanges(ctx, lr, v, o)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m.Warnings = append(m.Warnings, fmt.Sprintf("logical volume %s (%s): nothing excluded: %v", v.Name, v.Content, err))
			continue
		}
		for _, x := range rs {
			m.Ranges = append(m.Ranges, s.toDisk(lv, x)...)
		}
	}
	return nil
}

// checkVG refuses a volume group with a non-linear LV, a segment inside a
// PV's label and metadata area, or two segments on the same extents.
func (s *pvSet) checkVG(vg *guestdisk.VG) error {
	peStart := map[string]int64{}
	for name, uuid := range vg.PVUUIDs {
		peStart[uuid] = vg.PVs[name]
	}
	type span struct{ start, end int64 }
	used := map[string][]span{}
	for _, lv := range vg.LVs {
		if lv.Err != nil {
			return fmt.Errorf("logical volume %s is not linear (%v)", lv.Name, lv.Err)
		}
		for _, seg := range lv.Segments {
			if seg.PVOffset < peStart[seg.PVUUID] || peStart[seg.PVUUID] <= 0 {
				return fmt.Errorf("logical volume %s: a segment lies in its physical volume's metadata", lv.Name)
			}
			used[seg.PVUUID] = append(used[seg.PVUUID], span{seg.PVOffset, seg.PVOffset + seg.Length})
		}
	}
	for _, spans := range used {
		sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
		for i := 1; i < len(spans); i++ {
			if spans[i].start < spans[i-1].end {
				return fmt.Errorf("%w: logical volumes overlap on a physical volume", errDamaged)
			}
		}
	}
	return nil
}

// toDisk maps an LV range to disk ranges through the LV's segments; the
// parts on PVs of other disks are dropped (kept).
func (s *pvSet) toDisk(lv guestdisk.LV, x Range) []Range {
	var out []Range
	for _, seg := range lv.Segments {
		from, to := max(x.Offset, seg.Offset), min(x.End(), seg.Offset+seg.Length)
		start, ok := s.starts[seg.PVUUID]
		if from >= to || !ok {
			continue
		}
		out = append(out, Range{Offset: start + seg.PVOffset + (from - seg.Offset), Length: to - from, Reason: x.Reason})
	}
	return out
}
