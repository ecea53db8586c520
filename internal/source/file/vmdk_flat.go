package file

import (
	"fmt"
	"strings"
)

// FlatExtent is the single flat extent of a VMDK descriptor: File
// (relative to the descriptor's directory) holds Sectors sectors of the
// disk from sector Offset of the file on.
type FlatExtent struct {
	File            string
	Sectors, Offset int64
	Writable        bool // RW
}

// ParseFlatDescriptor reads a VMDK text descriptor (bytes from outside:
// bounded, never trusted) that describes a disk of exactly one FLAT or
// VMFS extent and no parent, as vSphere's thick and NFS thin disks are.
// Anything else (sparse extents, several extents, a delta disk) is an
// error saying so.
func ParseFlatDescriptor(text []byte) (FlatExtent, error) {
	d, err := parseDescriptor(text)
	if err != nil {
		return FlatExtent{}, err
	}
	if d.createType == "" {
		return FlatExtent{}, fmt.Errorf("not a VMDK descriptor (no createType)")
	}
	if err := d.checkNoParent(); err != nil {
		return FlatExtent{}, err
	}
	if len(d.extents) != 1 {
		return FlatExtent{}, fmt.Errorf("descriptor names %d extents, not one flat extent", len(d.extents))
	}
	x := d.extents[0]
	if x.kind != "FLAT" && x.kind != "VMFS" {
		return FlatExtent{}, fmt.Errorf("extent type %s, not a flat extent", x.kind)
	}
	if strings.ContainsAny(x.file, "/\\\x00") || x.file == "." || x.file == ".." {
		return FlatExtent{}, fmt.Errorf("%w: extent file %q is not in the descriptor's directory", ErrReference, x.file)
	}
	return FlatExtent{File: x.file, Sectors: x.sectors, Offset: x.offset, Writable: x.access == "RW"}, nil
}
