package libvirt

import (
	"fmt"

	"libvirt.org/go/libvirtxml"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// vmDisk is a disk of the domain that is backed up.
type vmDisk struct {
	Target string // "vda"
	Bus    string // "virtio"
	Format string // the driver type: "qcow2", "raw"
	File   string // the source file or device ("" for network disks)
}

// tracked reports whether libvirt can keep a checkpoint bitmap of the
// disk (qcow2 only).
func (d vmDisk) tracked() bool { return d.Format == "qcow2" }

// domainInfo is what the domain XML tells.
type domainInfo struct {
	Name, UUID string
	CPUs       int
	MemoryMiB  int64
	Disks      []vmDisk
	// Skipped names the disks not backed up, with why.
	Skipped []string
	NICs    []repo.VMNIC
}

// parseDomain reads a domain XML and picks the disks to back up.
func parseDomain(doc string) (domainInfo, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		return domainInfo{}, fmt.Errorf("domain XML: %w", err)
	}
	info := domainInfo{Name: d.Name, UUID: d.UUID}
	if d.VCPU != nil {
		info.CPUs = int(d.VCPU.Value)
	}
	if d.Memory != nil {
		info.MemoryMiB = int64(memoryBytes(d.Memory.Value, d.Memory.Unit) >> 20)
	}
	if d.Devices == nil {
		return info, nil
	}
	for _, x := range d.Devices.Disks {
		target := ""
		if x.Target != nil {
			target = x.Target.Dev
		}
		if why := skipReason(x); why != "" {
			info.Skipped = append(info.Skipped, fmt.Sprintf("%s: %s", orElse(target, noTarget), why))
			continue
		}
		if target == "" {
			return domainInfo{}, fmt.Errorf("domain XML: a disk has no target")
		}
		vd := vmDisk{Target: target, Format: "raw"}
		if x.Target != nil {
			vd.Bus = x.Target.Bus
		}
		if x.Driver != nil && x.Driver.Type != "" {
			vd.Format = x.Driver.Type
		}
		if x.Source != nil {
			switch {
			case x.Source.File != nil:
				vd.File = x.Source.File.File
			case x.Source.Block != nil:
				vd.File = x.Source.Block.Dev
			}
		}
		info.Disks = append(info.Disks, vd)
	}
	for _, n := range d.Devices.Interfaces {
		nic := repo.VMNIC{}
		if n.Model != nil {
			nic.Model = n.Model.Type
		}
		if n.MAC != nil {
			nic.MAC = n.MAC.Address
		}
		if n.Source != nil {
			switch {
			case n.Source.Network != nil:
				nic.Network = n.Source.Network.Network
			case n.Source.Bridge != nil:
				nic.Network = n.Source.Bridge.Bridge
			}
		}
		info.NICs = append(info.NICs, nic)
	}
	return info, nil
}

// skipReason says why the backup leaves a disk of the domain XML out
// (CD-ROM, floppy, read-only, shareable, transient), "" when it backs it
// up. The disks it backs up are, in XML order, the point's disks 0, 1, …;
// ParseRecorded and Rewrite match them the same way.
func skipReason(x libvirtxml.DomainDisk) string {
	switch {
	case x.Device == "cdrom":
		return "CD-ROM"
	case x.Device == "floppy":
		return "floppy"
	case x.ReadOnly != nil:
		return "read-only"
	case x.Shareable != nil:
		return "shareable"
	case x.Transient != nil:
		return "transient"
	}
	return ""
}

// noTarget names a disk without a target device in messages.
const noTarget = "(no target)"

// orElse is s, or def when s is empty.
func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// memoryBytes converts a libvirt memory value (default KiB) to bytes.
func memoryBytes(v uint, unit string) uint64 {
	mult := map[string]uint64{"": 1 << 10, "b": 1, "bytes": 1, "KB": 1000, "k": 1 << 10, "KiB": 1 << 10,
		"MB": 1000 * 1000, "M": 1 << 20, "MiB": 1 << 20, "GB": 1000 * 1000 * 1000, "G": 1 << 30, "GiB": 1 << 30,
		"TB": 1000 * 1000 * 1000 * 1000, "T": 1 << 40, "TiB": 1 << 40}
	m, ok := mult[unit]
	if !ok {
		return 0
	}
	return uint64(v) * m
}

// vmConfig is the manifest's record of the domain; xml is the domain XML
// as libvirt reported it.
func (info domainInfo) vmConfig(xml string, sizes []int64) *repo.VMConfig {
	c := &repo.VMConfig{Platform: "libvirt", Name: info.Name, UUID: info.UUID, CPUs: info.CPUs,
		MemoryMiB: info.MemoryMiB, Skipped: info.Skipped, NICs: info.NICs, DomainXML: xml}
	for i, d := range info.Disks {
		vd := repo.VMDisk{Index: i, Controller: d.Bus, File: d.File, Unit: i}
		if i < len(sizes) {
			vd.CapacityBytes = sizes[i]
		}
		c.Disks = append(c.Disks, vd)
	}
	return c
}
