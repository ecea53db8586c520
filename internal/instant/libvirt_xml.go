package instant

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"libvirt.org/go/libvirtxml"
)

// ErrDomainXML means a domain XML cannot be turned into the recovered
// domain's: unreadable, or its disks do not match the point's.
var ErrDomainXML = errors.New("domain XML")

// domainSpec says how to write the recovered domain's XML (domainXML).
type domainSpec struct {
	// XML is the domain to start from: the point's recorded domain XML, or
	// "" for a minimal one (memory, CPUs, accelerator from VM).
	XML  string
	Name string
	// Disks is the number of disks of the point.
	Disks int
	// Socket is the session's NBD socket for its VM; the disks become its
	// exports disk-0, disk-1 … in the order of the XML's backed-up disks.
	Socket string
	// RedoDir receives the domain's file-backed serial, console and channel
	// output (console-N.log), instead of the original domain's log files.
	RedoDir string
	// KeepIdentity keeps the recorded UUID and MAC addresses (for a domain
	// replacing the original); otherwise libvirt makes new ones.
	KeepIdentity bool
	// Network keeps the network interfaces; otherwise they are removed
	// (the recovered domain stays off the network).
	Network bool
	VM      VMOptions // the minimal domain: memory, CPUs, accel (kvm/tcg), NIC models
}

// domainPlan is the recovered domain's XML and what it maps.
type domainPlan struct {
	XML string
	// UUID is the UUID the XML keeps ("": libvirt makes one).
	UUID string
	// Targets are the target devices ("vda") of the point's disks, by
	// disk number.
	Targets []string
	// Dropped names the recorded disks left out (not in the point and not
	// a removable drive, which stays empty).
	Dropped []string
}

// domainXML writes the XML of the domain a libvirt session defines: the
// recorded (or minimal) domain renamed, its disks replaced by the session's
// NBD exports on its unix socket (raw), file-backed character devices
// logging into the redo directory, and unless KeepIdentity without UUID
// and MAC addresses, so libvirt makes new ones.
func domainXML(s domainSpec) (domainPlan, error) {
	var d libvirtxml.Domain
	if s.XML == "" {
		d = minimalDomain(s)
	} else if err := d.Unmarshal(s.XML); err != nil {
		return domainPlan{}, fmt.Errorf("%w: %w", ErrDomainXML, err)
	}
	d.Name, d.ID = s.Name, nil
	if !s.KeepIdentity {
		d.UUID = ""
	}
	if d.Devices == nil {
		d.Devices = &libvirtxml.DomainDeviceList{}
	}
	plan, err := replaceDisks(d.Devices, s)
	if err != nil {
		return domainPlan{}, err
	}
	replaceChardevs(d.Devices, s.RedoDir)
	if !s.Network {
		d.Devices.Interfaces = nil
	}
	for i := range d.Devices.Interfaces {
		if !s.KeepIdentity {
			d.Devices.Interfaces[i].MAC = nil
		}
		d.Devices.Interfaces[i].Target = nil // the host's tap device name
	}
	d.SecLabel = nil                      // the original host's labels
	if d.OS != nil && d.OS.NVRam != nil { // libvirt makes the new domain's own from the template
		d.OS.NVRam.NVRam, d.OS.NVRam.Source = "", nil
	}
	x, err := d.Marshal()
	if err != nil {
		return domainPlan{}, fmt.Errorf("%w: %w", ErrDomainXML, err)
	}
	plan.XML, plan.UUID = x, d.UUID
	return plan, nil
}

// replaceDisks puts the session's exports in place of the disks the point
// holds, empties removable drives and drops the other skipped disks.
func replaceDisks(devs *libvirtxml.DomainDeviceList, s domainSpec) (domainPlan, error) {
	var plan domainPlan
	var kept []libvirtxml.DomainDisk
	for _, x := range devs.Disks {
		target := ""
		if x.Target != nil {
			target = x.Target.Dev
		}
		switch {
		case x.Device == "cdrom" || x.Device == "floppy":
			x.Source, x.BackingStore = nil, nil
			kept = append(kept, x)
			continue
		case x.ReadOnly != nil || x.Shareable != nil || x.Transient != nil:
			plan.Dropped = append(plan.Dropped, orUnknownTarget(target))
			continue
		case target == "":
			return plan, fmt.Errorf("%w: a disk has no target", ErrDomainXML)
		}
		n := len(plan.Targets)
		plan.Targets = append(plan.Targets, target)
		x.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"}
		x.Source = &libvirtxml.DomainDiskSource{Network: &libvirtxml.DomainDiskSourceNetwork{
			Protocol: "nbd", Name: "disk-" + strconv.Itoa(n),
			Hosts: []libvirtxml.DomainDiskSourceHost{{Transport: "unix", Socket: s.Socket}}}}
		x.BackingStore, x.Mirror, x.Auth, x.Encryption, x.Alias = nil, nil, nil, nil, nil
		kept = append(kept, x)
	}
	if len(plan.Targets) != s.Disks {
		return plan, fmt.Errorf("%w: %d disk(s) to serve, the point has %d", ErrDomainXML, len(plan.Targets), s.Disks)
	}
	devs.Disks = kept
	return plan, nil
}

func orUnknownTarget(s string) string {
	if s == "" {
		return "(no target)"
	}
	return s
}

// replaceChardevs sends the file-backed serial ports, consoles and
// channels, and their logs, to console-N.log in the redo directory (one
// file per original path), and lets libvirt choose the paths of unix
// channels (the original's were its own).
func replaceChardevs(devs *libvirtxml.DomainDeviceList, redo string) {
	paths := map[string]string{}
	moved := func(p string) string {
		if _, ok := paths[p]; !ok {
			paths[p] = filepath.Join(redo, "console-"+strconv.Itoa(len(paths))+".log")
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

// minimalDomain is the domain for a point without domain XML: x86_64 "pc"
// with ACPI, the disks as virtio (vda, vdb …), a serial console logging to
// console-0.log, the recorded NIC models on user-mode networking.
func minimalDomain(s domainSpec) libvirtxml.Domain {
	vm := s.VM
	if vm.Memory <= 0 {
		vm.Memory = 1024
	}
	if vm.CPUs <= 0 {
		vm.CPUs = 1
	}
	typ := "qemu"
	if vm.Accel == "kvm" {
		typ = "kvm"
	}
	d := libvirtxml.Domain{Type: typ,
		Memory: &libvirtxml.DomainMemory{Value: uint(vm.Memory), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: uint(vm.CPUs)},
		OS: &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}}},
		Features: &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		Devices:  &libvirtxml.DomainDeviceList{},
	}
	for i := range s.Disks {
		d.Devices.Disks = append(d.Devices.Disks, libvirtxml.DomainDisk{Device: "disk",
			Target: &libvirtxml.DomainDiskTarget{Dev: virtioName(i), Bus: "virtio"}})
	}
	port := uint(0)
	d.Devices.Serials = []libvirtxml.DomainSerial{{
		Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: "console"}},
		Target: &libvirtxml.DomainSerialTarget{Port: &port}}}
	for _, model := range vm.NICs {
		d.Devices.Interfaces = append(d.Devices.Interfaces, libvirtxml.DomainInterface{
			Source: &libvirtxml.DomainInterfaceSource{User: &libvirtxml.DomainInterfaceSourceUser{}},
			Model:  &libvirtxml.DomainInterfaceModel{Type: model}})
	}
	d.Devices.Controllers = []libvirtxml.DomainController{{Type: "usb", Model: "none"}}
	d.Devices.MemBalloon = &libvirtxml.DomainMemBalloon{Model: "none"}
	return d
}

// virtioName is the target of the n-th virtio disk: vda … vdz, vdaa ….
func virtioName(n int) string {
	name := ""
	for n++; n > 0; n = (n - 1) / 26 {
		name = string(rune('a'+(n-1)%26)) + name
	}
	return "vd" + name
}
