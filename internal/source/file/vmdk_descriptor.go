package file

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits of VMDK text descriptors.
const (
	maxDescriptorSize = 1 << 20 // real descriptors are a few hundred bytes
	maxVMDKExtents    = 16384
	maxSectors        = maxDiskSize / sectorSize
	noParentCID       = "ffffffff"
)

// vmdkDescriptor is the part of a VMDK text descriptor this package uses.
type vmdkDescriptor struct {
	createType string
	parentCID  string
	extents    []vmdkExtentLine
}

// vmdkExtentLine is one extent description, such as
// `RW 2097152 FLAT "disk-flat.vmdk" 0`.
type vmdkExtentLine struct {
	access  string // RW, RDONLY or NOACCESS
	sectors int64
	kind    string // FLAT, SPARSE, ZERO, VMFS, ...
	file    string // relative to the descriptor's directory; "" for ZERO
	offset  int64  // in sectors, FLAT and VMFS only
}

// parseDescriptor parses a text descriptor (standalone, or embedded in a
// sparse extent and then padded with NULs).
func parseDescriptor(text []byte) (*vmdkDescriptor, error) {
	if len(text) > maxDescriptorSize {
		return nil, fmt.Errorf("descriptor of %d bytes too large", len(text))
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	d := &vmdkDescriptor{}
	var total int64
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if isExtentLine(line) {
			x, err := parseExtentLine(line)
			if err != nil {
				return nil, fmt.Errorf("descriptor line %d: %w", i+1, err)
			}
			if total += x.sectors; total > maxSectors || len(d.extents) >= maxVMDKExtents {
				return nil, fmt.Errorf("descriptor line %d: disk too large or too many extents", i+1)
			}
			d.extents = append(d.extents, x)
			continue
		}
		d.setKey(line)
	}
	return d, nil
}

// setKey records the key=value lines this package uses.
func (d *vmdkDescriptor) setKey(line string) {
	key, value, ok := strings.Cut(line, "=")
	if !ok {
		return
	}
	value = strings.Trim(strings.TrimSpace(value), `"`)
	switch strings.TrimSpace(key) {
	case "createType":
		d.createType = value
	case "parentCID":
		d.parentCID = value
	}
}

// checkNoParent refuses delta disks, whose unallocated grains read from a
// parent disk.
func (d *vmdkDescriptor) checkNoParent() error {
	if d.parentCID != "" && !strings.EqualFold(d.parentCID, noParentCID) {
		return fmt.Errorf("delta disk with a parent (parentCID=%s) not supported", d.parentCID)
	}
	return nil
}

// checkNoFiles refuses a detected descriptor that names extent files: a
// guest can write a descriptor into a small raw disk.
func (d *vmdkDescriptor) checkNoFiles() error {
	for _, x := range d.extents {
		if x.file != "" {
			return fmt.Errorf("%w: extent file %q not opened: the format was detected from the content, which the guest of a raw disk can forge; give the format (--format vmdk if the descriptor is the host's, or --format raw)",
				ErrReference, x.file)
		}
	}
	return nil
}

func isExtentLine(line string) bool {
	access, _, _ := strings.Cut(line, " ")
	access, _, _ = strings.Cut(access, "\t")
	switch access {
	case "RW", "RDONLY", "NOACCESS":
		return true
	}
	return false
}

func parseExtentLine(line string) (vmdkExtentLine, error) {
	f, err := splitFields(line)
	if err != nil {
		return vmdkExtentLine{}, err
	}
	if len(f) < 3 {
		return vmdkExtentLine{}, fmt.Errorf("extent line %q: too few fields", line)
	}
	x := vmdkExtentLine{access: f[0], kind: strings.ToUpper(f[2])}
	if x.sectors, err = parseSectors(f[1]); err != nil || x.sectors == 0 {
		return x, fmt.Errorf("extent line %q: invalid size %q", line, f[1])
	}
	if x.kind == "ZERO" {
		return x, nil
	}
	if len(f) < 4 || f[3] == "" {
		return x, fmt.Errorf("extent line %q: no file name", line)
	}
	x.file = f[3]
	if len(f) > 4 {
		if x.offset, err = parseSectors(f[4]); err != nil {
			return x, fmt.Errorf("extent line %q: invalid offset %q", line, f[4])
		}
	}
	return x, nil
}

func parseSectors(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxSectors {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// splitFields splits on blanks, keeping "quoted strings" (without quotes)
// as one field.
func splitFields(line string) ([]string, error) {
	var fields []string
	for {
		line = strings.TrimLeft(line, " \t")
		if line == "" {
			return fields, nil
		}
		if line[0] == '"' {
			end := strings.IndexByte(line[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", line)
			}
			fields = append(fields, line[1:1+end])
			line = line[2+end:]
			continue
		}
		end := strings.IndexAny(line, " \t")
		if end < 0 {
			end = len(line)
		}
		fields = append(fields, line[:end])
		line = line[end:]
	}
}
