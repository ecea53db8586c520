package libvirtrestore

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"libvirt.org/go/libvirtxml"

	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
)

// ErrBadXML is matched when the recorded domain XML cannot be defined
// again: not XML, no name, a backed-up disk without a usable target, or
// disks that do not match the point's.
var ErrBadXML = errors.New("recorded domain XML unusable")

// Recorded is what a restore needs to know of the recorded domain XML
// before it writes anything.
type Recorded struct {
	Name, UUID string
	// Targets are the target devices ("vda") of the backed-up disks, in
	// the point's disk order.
	Targets []string
}

// safeName is what a disk target or domain name may be made of to be part
// of a file name.
var safeTarget = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ParseRecorded reads the recorded domain XML.
func ParseRecorded(doc string) (*Recorded, error) {
	d, err := unmarshal(doc)
	if err != nil {
		return nil, err
	}
	r := &Recorded{Name: d.Name, UUID: d.UUID}
	if d.Devices == nil {
		return r, nil
	}
	for _, x := range d.Devices.Disks {
		if libvirt.SkipReason(x) != "" {
			continue
		}
		if x.Target == nil || !safeTarget.MatchString(x.Target.Dev) {
			return nil, fmt.Errorf("%w: a backed-up disk has no usable target device", ErrBadXML)
		}
		for _, t := range r.Targets {
			if t == x.Target.Dev {
				return nil, fmt.Errorf("%w: two disks have target %s", ErrBadXML, t)
			}
		}
		r.Targets = append(r.Targets, x.Target.Dev)
	}
	return r, nil
}

func unmarshal(doc string) (*libvirtxml.Domain, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadXML, err)
	}
	if err := CheckName(d.Name); err != nil {
		return nil, fmt.Errorf("%w: recorded name: %w", ErrBadXML, err)
	}
	return &d, nil
}

// CheckName refuses a domain name that cannot also name files.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("empty domain name")
	case len(name) > 200, strings.ContainsAny(name, "/\x00\n"), name == ".", name == "..", strings.HasPrefix(name, "-"):
		return fmt.Errorf("domain name %q cannot name files", name)
	}
	return nil
}

// DefineOptions say how the recorded XML becomes the restored domain's.
type DefineOptions struct {
	// Name of the restored domain; "" keeps the recorded one.
	Name string
	// NewIdentity gives the domain a new UUID and new MAC addresses (a
	// copy beside the original, or a domain of another name). Otherwise
	// the recorded UUID and MACs are kept (the original, replaced).
	NewIdentity bool
	// Files are the restored qcow2 images of the backed-up disks, in the
	// point's disk order (as Recorded.Targets).
	Files []string
	// Disconnect sets the link state of every interface down.
	Disconnect bool
	// Rand makes UUIDs and MACs; nil is crypto/rand.
	Rand io.Reader
}

// Defined is the rewritten domain.
type Defined struct {
	XML        string
	Name, UUID string
	MACs       []string
	// Notes say what the restore changed or left out.
	Notes []string
}

// Rewrite turns the recorded domain XML into one to define: every
// backed-up disk a qcow2 file of o.Files, the disks the backup skipped
// emptied (CD-ROM, floppy) or dropped, runtime state (id, interface device
// names, backing chains, generated security labels) removed, and with
// NewIdentity a new UUID and MACs. It never panics on any input.
func Rewrite(doc string, o DefineOptions) (*Defined, error) {
	d, err := unmarshal(doc)
	if err != nil {
		return nil, err
	}
	if o.Name != "" {
		if err := CheckName(o.Name); err != nil {
			return nil, err
		}
		d.Name = o.Name
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	out := &Defined{Name: d.Name}
	d.ID = nil
	if d.GenID != nil { // a restore is a VM generation change: libvirt makes a new one
		d.GenID.Value = ""
	}
	if o.NewIdentity {
		if err := newIdentity(d, o.Rand, out); err != nil {
			return nil, err
		}
	}
	out.UUID = d.UUID
	securityLabels(d, o.NewIdentity, out)
	if d.Devices == nil {
		d.Devices = &libvirtxml.DomainDeviceList{}
	}
	if err := rewriteDisks(d.Devices, o.Files, out); err != nil {
		return nil, err
	}
	if err := rewriteInterfaces(d.Devices, o, out); err != nil {
		return nil, err
	}
	x, err := d.Marshal()
	if err == nil { // only XML that reads back the same way goes to libvirt
		err = new(libvirtxml.Domain).Unmarshal(x)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadXML, err)
	}
	out.XML = x
	return out, nil
}

// newIdentity gives d a new UUID (also where the guest sees it) and frees
// the per-domain state files it would share with the original.
func newIdentity(d *libvirtxml.Domain, r io.Reader, out *Defined) error {
	id, err := uuid.NewRandomFromReader(r)
	if err != nil {
		return fmt.Errorf("new UUID: %w", err)
	}
	old := d.UUID
	d.UUID = id.String()
	d.HWUUID = ""
	for _, si := range d.SysInfo {
		if si.SMBIOS == nil || si.SMBIOS.System == nil {
			continue
		}
		for i, e := range si.SMBIOS.System.Entry {
			if e.Name == "uuid" {
				si.SMBIOS.System.Entry[i].Value = d.UUID
			}
		}
	}
	if d.OS != nil && d.OS.NVRam != nil && (d.OS.NVRam.NVRam != "" || d.OS.NVRam.Source != nil) {
		d.OS.NVRam.NVRam, d.OS.NVRam.Source = "", nil
		out.Notes = append(out.Notes, "UEFI variables are not in the backup: the new domain's NVRAM starts from the firmware's template")
	}
	if d.Devices != nil {
		for _, t := range d.Devices.TPMs {
			if t.Backend != nil && t.Backend.Emulator != nil {
				out.Notes = append(out.Notes, "the emulated TPM's state belongs to UUID "+old+": the new domain gets an empty TPM")
				break
			}
		}
	}
	return nil
}

// securityLabels drops labels libvirt generated at run time; a copy
// does not take the original's fixed (static) labels, which would give
// both the same confinement.
func securityLabels(d *libvirtxml.Domain, newIdentity bool, out *Defined) {
	var keep []libvirtxml.DomainSecLabel
	for _, l := range d.SecLabel {
		switch {
		case l.Type == "dynamic":
			l.Label, l.ImageLabel = "", ""
		case l.Type == "static" && newIdentity:
			out.Notes = append(out.Notes, fmt.Sprintf("the fixed %s security label of the original was not given to the copy", orNone(l.Model)))
			continue
		}
		keep = append(keep, l)
	}
	d.SecLabel = keep
}

func orNone(s string) string {
	if s == "" {
		return "(default model)"
	}
	return s
}

// rewriteDisks points the backed-up disks at their restored images and
// empties or drops the others.
func rewriteDisks(dev *libvirtxml.DomainDeviceList, files []string, out *Defined) error {
	var disks []libvirtxml.DomainDisk
	n := 0
	for _, x := range dev.Disks {
		target := "(no target)"
		if x.Target != nil && x.Target.Dev != "" {
			target = x.Target.Dev
		}
		if why := libvirt.SkipReason(x); why != "" {
			if x.Device == "cdrom" || x.Device == "floppy" {
				x.Source, x.BackingStore, x.Mirror, x.Alias, x.Auth = nil, nil, nil, nil, nil
				out.Notes = append(out.Notes, fmt.Sprintf("%s (%s, not backed up) is kept empty", target, why))
				disks = append(disks, x)
				continue
			}
			out.Notes = append(out.Notes, fmt.Sprintf("%s (%s, not backed up) is left out of the domain", target, why))
			continue
		}
		if n >= len(files) {
			return fmt.Errorf("%w: the XML has more backed-up disks than the point (%d)", ErrBadXML, len(files))
		}
		if x.Target == nil || !safeTarget.MatchString(x.Target.Dev) {
			return fmt.Errorf("%w: a backed-up disk has no usable target device", ErrBadXML)
		}
		if x.Device == "lun" {
			x.Device = "disk"
			out.Notes = append(out.Notes, target+" was a SCSI LUN passed through; it is restored as a plain disk")
		}
		if kind := sourceKind(x.Source); kind != "file" {
			out.Notes = append(out.Notes, fmt.Sprintf("%s was a %s disk; it is restored as a file", target, kind))
		}
		drv := libvirtxml.DomainDiskDriver{Name: "qemu"}
		if x.Driver != nil {
			drv = *x.Driver
		}
		drv.Type = "qcow2"
		x.Driver = &drv
		x.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: files[n]}}
		x.BackingStore, x.Mirror, x.Alias, x.Auth, x.Encryption = nil, nil, nil, nil, nil
		disks = append(disks, x)
		n++
	}
	if n != len(files) {
		return fmt.Errorf("%w: the XML has %d backed-up disk(s), the point %d", ErrBadXML, n, len(files))
	}
	dev.Disks = disks
	return nil
}

// sourceKind names the kind of a disk's source as libvirt's disk type does.
func sourceKind(s *libvirtxml.DomainDiskSource) string {
	switch {
	case s == nil, s.File != nil:
		return "file"
	case s.Block != nil:
		return "block"
	case s.Network != nil:
		return "network"
	case s.Volume != nil:
		return "storage pool volume"
	}
	return "special"
}

// rewriteInterfaces drops run-time names, gives new MACs with a new
// identity, and with Disconnect sets every link down.
func rewriteInterfaces(dev *libvirtxml.DomainDeviceList, o DefineOptions, out *Defined) error {
	for i := range dev.Interfaces {
		n := &dev.Interfaces[i]
		n.Target, n.Alias = nil, nil
		if o.NewIdentity {
			mac, err := newMAC(o.Rand)
			if err != nil {
				return err
			}
			n.MAC = &libvirtxml.DomainInterfaceMAC{Address: mac}
		}
		if n.MAC != nil {
			out.MACs = append(out.MACs, n.MAC.Address)
		}
		if o.Disconnect {
			n.Link = &libvirtxml.DomainInterfaceLink{State: "down"}
		}
	}
	if o.Disconnect && len(dev.Interfaces) > 0 {
		out.Notes = append(out.Notes, "every network interface's link is down: virsh domif-setlink DOMAIN MAC up connects it")
	}
	return nil
}

// newMAC is a random address in QEMU's range 52:54:00, as libvirt makes.
func newMAC(r io.Reader) (string, error) {
	var b [3]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("new MAC address: %w", err)
	}
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]), nil
}
