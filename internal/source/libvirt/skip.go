package libvirt

import "libvirt.org/go/libvirtxml"

// SkipReason says why the backup leaves a disk of the domain XML out
// (CD-ROM, floppy, read-only, shareable, transient), "" when it backs it
// up. The disks it backs up are, in XML order, the point's disks 0, 1, …;
// a restore that defines the domain again matches them the same way.
func SkipReason(x libvirtxml.DomainDisk) string { return skipReason(x) }
