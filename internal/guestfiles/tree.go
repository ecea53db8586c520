package guestfiles

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/guestdisk"
	"github.com/holdfast-backup/holdfast/internal/guestfs"
)

// Errors of addressing.
var (
	// ErrNoVolume is a DISK[:PART] that is not in the point, or a volume
	// whose filesystem cannot be read.
	ErrNoVolume = errors.New("no such volume")
	// ErrNotFound is a guest path that is not there (wraps fs.ErrNotExist).
	ErrNotFound = guestfs.ErrNotExist
)

// Disk is one disk of a point: bytes at any offset and a size.
type Disk interface {
	io.ReaderAt
	Size() int64
}

// Volume is one partition (or whole disk) of a point.
type Volume struct {
	Name string `json:"name"` // disk0-p1, disk0 (no partition table), or vg-lv (an LVM logical volume)
	Disk int    `json:"disk"` // -1 for a logical volume
	guestdisk.Volume
	FS  *guestfs.FS `json:"-"`
	Err error       `json:"-"` // why FS is nil
}

// Tree is the volumes of a point's disks.
type Tree struct {
	Volumes []*Volume
	disks   []Disk
}

// OpenTree reads the partition tables of disks and opens every filesystem
// guestfs reads. A damaged partition table is an error naming the disk; a
// damaged or unsupported filesystem is kept as the volume's Err.
func OpenTree(disks []Disk) (*Tree, error) {
	t := &Tree{disks: disks}
	for i, d := range disks {
		vs, err := guestdisk.Volumes(d, d.Size())
		if err != nil {
			return nil, fmt.Errorf("disk %d: %w", i, err)
		}
		for _, v := range vs {
			name := fmt.Sprintf("disk%d-p%d", i, v.Partition)
			if v.Partition == 0 {
				name = fmt.Sprintf("disk%d", i)
			}
			vol := &Volume{Name: name, Disk: i, Volume: v}
			vol.FS, vol.Err = guestfs.Open(v.Section(d), v.Size, v.Content)
			if vol.Err != nil {
				vol.Err = fmt.Errorf("%s: %w", name, vol.Err)
			}
			t.Volumes = append(t.Volumes, vol)
		}
	}
	t.addLVs(disks)
	return t, nil
}

// addLVs adds the linear logical volumes of the LVM physical volumes found,
// named as device-mapper names them ("vg-lv"). Each volume group is read
// from the newest metadata (highest seqno) among its PVs; an LV on a PV
// the point does not hold, or not linear, is listed with the reason.
func (t *Tree) addLVs(disks []Disk) {
	readers, sizes := map[string]io.ReaderAt{}, map[string]int64{}
	vgs := map[string]*guestdisk.VG{}
	var order []string
	for _, v := range t.Volumes {
		if v.Content != guestdisk.ContentLVM {
			continue
		}
		sec := v.Section(disks[v.Disk])
		pv, err := guestdisk.ReadPV(sec, v.Size)
		if err != nil {
			v.Err = fmt.Errorf("%s: %w", v.Name, err)
			continue
		}
		v.Err = fmt.Errorf("%s: LVM physical volume of volume group %s", v.Name, pv.VG.Name)
		readers[pv.UUID], sizes[pv.UUID] = sec, v.Size
		if old, ok := vgs[pv.VG.Name]; !ok || pv.VG.Seqno > old.Seqno {
			if !ok {
				order = append(order, pv.VG.Name)
			}
			vg := pv.VG
			vgs[pv.VG.Name] = &vg
		}
	}
	for _, name := range order {
		for _, lv := range vgs[name].LVs {
			vol := &Volume{Name: guestdisk.DMName(name, lv.Name), Disk: -1, Volume: guestdisk.Volume{Size: lv.Size, Name: name + "/" + lv.Name}}
			r, err := guestdisk.NewLVReader(lv, readers, sizes)
			if err == nil {
				vol.Content = guestdisk.Probe(r, lv.Size)
				vol.FS, err = guestfs.Open(r, lv.Size, vol.Content)
			}
			if err != nil {
				vol.Err = fmt.Errorf("%s: %w", vol.Name, err)
			}
			t.Volumes = append(t.Volumes, vol)
		}
	}
}

// Readable lists the volumes with a filesystem guestfs reads.
func (t *Tree) Readable() []*Volume {
	var out []*Volume
	for _, v := range t.Volumes {
		if v.FS != nil {
			out = append(out, v)
		}
	}
	return out
}

// Volume finds volume DISK[:PART] ("0", "0:2"); a DISK alone is the disk's
// only readable volume.
func (t *Tree) Volume(sel string) (*Volume, error) {
	diskStr, partStr, hasPart := strings.Cut(sel, ":")
	disk, err := strconv.Atoi(diskStr)
	if err != nil || disk < 0 {
		return nil, fmt.Errorf("%w: %q is not DISK[:PART]", ErrNoVolume, sel)
	}
	part := -1
	if hasPart {
		if part, err = strconv.Atoi(partStr); err != nil || part < 0 {
			return nil, fmt.Errorf("%w: %q is not DISK[:PART]", ErrNoVolume, sel)
		}
	}
	var match []*Volume
	for _, v := range t.Volumes {
		if v.Disk == disk && (part < 0 || v.Partition == part) && (part >= 0 || v.FS != nil) {
			match = append(match, v)
		}
	}
	switch {
	case len(match) == 0:
		return nil, fmt.Errorf("%w: %s", ErrNoVolume, sel)
	case len(match) > 1:
		names := make([]string, len(match))
		for i, v := range match {
			names[i] = v.Name
		}
		return nil, fmt.Errorf("%w: disk %d has several filesystems (%s): name one as DISK:PART", ErrNoVolume, disk, strings.Join(names, ", "))
	case match[0].FS == nil:
		return nil, fmt.Errorf("%w: %v", ErrNoVolume, match[0].Err)
	}
	return match[0], nil
}

// Single is the point's only readable volume, or nil when there are none
// or several.
func (t *Tree) Single() *Volume {
	if r := t.Readable(); len(r) == 1 {
		return r[0]
	}
	return nil
}

// Locate maps a path given without DISK:PART to a volume and a path in it:
// with one readable volume, the path is in it; with several, the path's
// first element names the volume. A nil volume with no error is the top
// (the list of volumes).
func (t *Tree) Locate(p string) (*Volume, string, error) {
	if v := t.Single(); v != nil {
		return v, p, nil
	}
	clean := strings.TrimPrefix(path.Clean("/"+p), "/")
	if clean == "" {
		return nil, "", nil
	}
	first, rest, _ := strings.Cut(clean, "/")
	for _, v := range t.Volumes {
		if v.Name == first {
			if v.FS == nil {
				return nil, "", fmt.Errorf("%w: %v", ErrNoVolume, v.Err)
			}
			return v, rest, nil
		}
	}
	return nil, "", fmt.Errorf("%s: %w (the point's volumes are the top directories)", "/"+clean, ErrNotFound)
}

// SplitAddress splits POINT[:DISK[:PART]]: one or two trailing all-digit
// elements are the disk and partition ("vm:latest:0:1"), the rest is the
// point.
func SplitAddress(addr string) (point, sel string) {
	parts := strings.Split(addr, ":")
	n := 0
	for i := len(parts) - 1; i >= 1 && n < 2 && isDigits(parts[i]); i-- {
		n++
	}
	if n == 0 {
		return addr, ""
	}
	return strings.Join(parts[:len(parts)-n], ":"), strings.Join(parts[len(parts)-n:], ":")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
