package libvirt

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"libvirt.org/go/libvirtxml"
)

// ErrDomainXML is matched when a recorded domain XML cannot be defined
// again: not XML, no usable name, a disk of the point without a usable
// target, or disks that do not match the point's.
var ErrDomainXML = errors.New("recorded domain XML unusable")

// Recorded is what the recorded domain XML says of the point before
// anything is written.
type Recorded struct {
	Name, UUID string
	// Targets are the target devices ("vda") of the backed-up disks, in
	// the point's disk order.
	Targets []string
}

// safeTarget is what a disk target may be made of to be part of a file
// name.
var safeTarget = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ParseRecorded reads a recorded domain XML: its name (CheckDomainName)
// and the targets of the disks the backup read (skipReason), which must
// be distinct and usable in file names.
func ParseRecorded(doc string) (*Recorded, error) {
	d, err := unmarshalDomain(doc)
	if err != nil {
		return nil, err
	}
	if err := CheckDomainName(d.Name); err != nil {
		return nil, fmt.Errorf("%w: recorded name: %w", ErrDomainXML, err)
	}
	r := &Recorded{Name: d.Name, UUID: d.UUID}
	if d.Devices == nil {
		return r, nil
	}
	for _, x := range d.Devices.Disks {
		if skipReason(x) != "" {
			continue
		}
		if x.Target == nil || !safeTarget.MatchString(x.Target.Dev) {
			return nil, fmt.Errorf("%w: a backed-up disk has no usable target device", ErrDomainXML)
		}
		for _, t := range r.Targets {
			if t == x.Target.Dev {
				return nil, fmt.Errorf("%w: two disks have target %s", ErrDomainXML, t)
			}
		}
		r.Targets = append(r.Targets, x.Target.Dev)
	}
	return r, nil
}

func unmarshalDomain(doc string) (*libvirtxml.Domain, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDomainXML, err)
	}
	return &d, nil
}

// CheckDomainName refuses a domain name that cannot also name files.
func CheckDomainName(name string) error {
	switch {
	case name == "":
		return errors.New("empty domain name")
	case len(name) > 200, strings.ContainsAny(name, "/\x00\n"), name == ".", name == "..", strings.HasPrefix(name, "-"):
		return fmt.Errorf("domain name %q cannot name files", name)
	}
	return nil
}

// DiskSource is what a disk of the point reads from in the rewritten
// domain: a qcow2 image File (a restore), or the export Export of an NBD
// server on the unix socket Socket, raw (instant recovery).
type DiskSource struct {
	File           string
	Socket, Export string
}

// NetworkMode says what becomes of the recorded network interfaces.
type NetworkMode string

// The network modes.
const (
	NetworkKeep       NetworkMode = "" // as recorded
	NetworkDisconnect NetworkMode = "disconnect"
	NetworkRemove     NetworkMode = "remove"
)

// RewriteOptions say how a recorded domain XML becomes the XML of the
// domain to define.
type RewriteOptions struct {
	// Name of the domain; "" keeps the recorded one.
	Name string
	// Disks are the sources of the point's disks, by disk number: the
	// XML's backed-up disks in order.
	Disks []DiskSource
	// KeepIdentity keeps the recorded UUID and MAC addresses (the
	// original, replaced). Otherwise the domain gets a new UUID and new
	// MACs (a copy beside the original, or a domain of another name).
	KeepIdentity bool
	// FreshNVRAM gives the domain an NVRAM file of its own from the
	// firmware's template even when it keeps the identity: a domain whose
	// undefine removes its NVRAM must not own the original's.
	FreshNVRAM bool
	// Network keeps, disconnects (link down) or removes the interfaces.
	Network NetworkMode
	// ChardevDir, if set, receives the file-backed serial, console and
	// channel output (console-N.log) instead of the recorded log files.
	ChardevDir string
	// Rand makes UUIDs and MACs; nil is crypto/rand.
	Rand io.Reader
}

// Rewritten is the domain to define.
type Rewritten struct {
	XML        string
	Name, UUID string
	MACs       []string
	// Targets are the target devices of the point's disks, by disk
	// number; Dropped the recorded disks left out of the domain.
	Targets, Dropped []string
	// Notes say what the rewrite changed or left out.
	Notes []string
}

// Rewrite turns a recorded domain XML into one to define (see the package
// documentation, "The domain XML rewrite"): every backed-up disk on its
// source of o.Disks, the disks the backup skipped emptied (CD-ROM,
// floppy) or dropped, run-time state removed, and without KeepIdentity a
// new UUID and MACs. It never panics on any input; its XML reads back.
func Rewrite(doc string, o RewriteOptions) (*Rewritten, error) {
	d, err := unmarshalDomain(doc)
	if err != nil {
		return nil, err
	}
	if o.Name == "" {
		if err := CheckDomainName(d.Name); err != nil {
			return nil, fmt.Errorf("%w: recorded name: %w", ErrDomainXML, err)
		}
	} else if err := CheckDomainName(o.Name); err != nil {
		return nil, err
	} else {
		d.Name = o.Name
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	out := &Rewritten{Name: d.Name}
	d.ID = nil
	if d.GenID != nil { // a new VM generation to the guest: libvirt makes one
		d.GenID.Value = ""
	}
	if !o.KeepIdentity {
		if err := newIdentity(d, o.Rand, out); err != nil {
			return nil, err
		}
	}
	if (!o.KeepIdentity || o.FreshNVRAM) && d.OS != nil && d.OS.NVRam != nil && (d.OS.NVRam.NVRam != "" || d.OS.NVRam.Source != nil) {
		d.OS.NVRam.NVRam, d.OS.NVRam.Source = "", nil
		out.Notes = append(out.Notes, "UEFI variables are not in the backup: the new domain's NVRAM starts from the firmware's template")
	}
	out.UUID = d.UUID
	securityLabels(d, o.KeepIdentity, out)
	if d.Devices == nil {
		d.Devices = &libvirtxml.DomainDeviceList{}
	}
	if err := rewriteDisks(d.Devices, o.Disks, out); err != nil {
		return nil, err
	}
	if err := rewriteInterfaces(d.Devices, o, out); err != nil {
		return nil, err
	}
	if o.ChardevDir != "" {
		redirectChardevs(d.Devices, o.ChardevDir)
	}
	x, err := d.Marshal()
	if err == nil { // only XML that reads back the same way goes to libvirt
		err = new(libvirtxml.Domain).Unmarshal(x)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDomainXML, err)
	}
	out.XML = x
	return out, nil
}

// newIdentity gives d a new UUID (also where the guest sees it) and says
// which per-domain state stays with the original.
func newIdentity(d *libvirtxml.Domain, r io.Reader, out *Rewritten) error {
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

// securityLabels drops labels libvirt generated at run time; a new
// identity does not take the original's fixed (static) labels, which
// would give both the same confinement.
func securityLabels(d *libvirtxml.Domain, keepIdentity bool, out *Rewritten) {
	var keep []libvirtxml.DomainSecLabel
	for _, l := range d.SecLabel {
		switch {
		case l.Type == "dynamic":
			l.Label, l.ImageLabel = "", ""
		case l.Type == "static" && !keepIdentity:
			out.Notes = append(out.Notes, fmt.Sprintf("the fixed %s security label of the original was not given to the copy", orElse(l.Model, "(default model)")))
			continue
		}
		keep = append(keep, l)
	}
	d.SecLabel = keep
}

// rewriteDisks puts the point's disks on their sources and empties or
// drops the others.
func rewriteDisks(dev *libvirtxml.DomainDeviceList, srcs []DiskSource, out *Rewritten) error {
	var disks []libvirtxml.DomainDisk
	for _, x := range dev.Disks {
		target := noTarget
		if x.Target != nil {
			target = orElse(x.Target.Dev, noTarget)
		}
		if why := skipReason(x); why != "" {
			if x.Device == "cdrom" || x.Device == "floppy" {
				x.Source, x.BackingStore, x.Mirror, x.Alias, x.Auth = nil, nil, nil, nil, nil
				out.Notes = append(out.Notes, fmt.Sprintf("%s (%s, not backed up) is kept empty", target, why))
				disks = append(disks, x)
				continue
			}
			out.Dropped = append(out.Dropped, target)
			out.Notes = append(out.Notes, fmt.Sprintf("%s (%s, not backed up) is left out of the domain", target, why))
			continue
		}
		n := len(out.Targets)
		if n >= len(srcs) {
			return fmt.Errorf("%w: the XML has more backed-up disks than the point (%d)", ErrDomainXML, len(srcs))
		}
		if x.Target == nil || !safeTarget.MatchString(x.Target.Dev) {
			return fmt.Errorf("%w: a backed-up disk has no usable target device", ErrDomainXML)
		}
		if x.Device == "lun" {
			x.Device = "disk"
			out.Notes = append(out.Notes, target+" was a SCSI LUN passed through; it is now a plain disk")
		}
		diskSource(&x, srcs[n], out)
		x.BackingStore, x.Mirror, x.Alias, x.Auth, x.Encryption = nil, nil, nil, nil, nil
		disks = append(disks, x)
		out.Targets = append(out.Targets, target)
	}
	if len(out.Targets) != len(srcs) {
		return fmt.Errorf("%w: the XML has %d backed-up disk(s), the point %d", ErrDomainXML, len(out.Targets), len(srcs))
	}
	dev.Disks = disks
	return nil
}

// diskSource points x at s: a qcow2 file keeps the recorded driver
// options; an NBD export is raw with QEMU's defaults, since the recorded
// options (io, cache) were chosen for a local file or device.
func diskSource(x *libvirtxml.DomainDisk, s DiskSource, out *Rewritten) {
	if s.File == "" {
		x.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"}
		x.Source = &libvirtxml.DomainDiskSource{Network: &libvirtxml.DomainDiskSourceNetwork{
			Protocol: "nbd", Name: s.Export,
			Hosts: []libvirtxml.DomainDiskSourceHost{{Transport: "unix", Socket: s.Socket}}}}
		return
	}
	if kind := sourceKind(x.Source); kind != "file" {
		out.Notes = append(out.Notes, fmt.Sprintf("%s was a %s disk; it is restored as a file", x.Target.Dev, kind))
	}
	drv := libvirtxml.DomainDiskDriver{Name: "qemu"}
	if x.Driver != nil {
		drv = *x.Driver
	}
	drv.Type = "qcow2"
	x.Driver = &drv
	x.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.File}}
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

// rewriteInterfaces removes the interfaces, or drops their run-time names,
// gives new MACs with a new identity, and with NetworkDisconnect sets
// every link down.
func rewriteInterfaces(dev *libvirtxml.DomainDeviceList, o RewriteOptions, out *Rewritten) error {
	if o.Network == NetworkRemove {
		if len(dev.Interfaces) > 0 {
			out.Notes = append(out.Notes, "the network interfaces are left out of the domain")
		}
		dev.Interfaces = nil
		return nil
	}
	for i := range dev.Interfaces {
		n := &dev.Interfaces[i]
		n.Target, n.Alias = nil, nil
		if !o.KeepIdentity {
			mac, err := newMAC(o.Rand)
			if err != nil {
				return err
			}
			n.MAC = &libvirtxml.DomainInterfaceMAC{Address: mac}
		}
		if n.MAC != nil {
			out.MACs = append(out.MACs, n.MAC.Address)
		}
		if o.Network == NetworkDisconnect {
			n.Link = &libvirtxml.DomainInterfaceLink{State: "down"}
		}
	}
	if o.Network == NetworkDisconnect && len(dev.Interfaces) > 0 {
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

// redirectChardevs sends the file-backed serial ports, consoles and
// channels, and their logs, to console-N.log in dir (one file per
// recorded path), and lets libvirt choose the paths of unix channels (the
// original's were its own).
func redirectChardevs(devs *libvirtxml.DomainDeviceList, dir string) {
	paths := map[string]string{}
	moved := func(p string) string {
		if _, ok := paths[p]; !ok {
			paths[p] = filepath.Join(dir, "console-"+strconv.Itoa(len(paths))+".log")
		}
		return paths[p]
	}
	fix := func(src *libvirtxml.DomainChardevSource, log *libvirtxml.DomainChardevLog) {
		if src != nil && src.File != nil {
			src.File.Path = moved(src.File.Path)
		}
		if src != nil && src.UNIX != nil && src.UNIX.Mode != "connect" {
			src.UNIX.Path = ""
		}
		if log != nil {
			log.File = moved(log.File)
		}
	}
	for i := range devs.Serials {
		fix(devs.Serials[i].Source, devs.Serials[i].Log)
	}
	for i := range devs.Consoles {
		fix(devs.Consoles[i].Source, devs.Consoles[i].Log)
	}
	for i := range devs.Channels {
		fix(devs.Channels[i].Source, devs.Channels[i].Log)
	}
}
