package instant

import (
	"fmt"

	"libvirt.org/go/libvirtxml"

	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
)

// recoveryOptions say how libvirt.Rewrite makes the XML of a session's
// domain: the point's disks on the session's NBD exports (socket, raw),
// file-backed character devices logging into the redo directory, a new
// UUID and MACs unless KeepIdentity, always an NVRAM file of its own (the
// session's undefine removes it), and the interfaces removed unless
// Network.
func recoveryOptions(lo LibvirtOptions, name string, disks int, socket, redoDir string) libvirt.RewriteOptions {
	o := libvirt.RewriteOptions{Name: name, KeepIdentity: lo.KeepIdentity, FreshNVRAM: true,
		Network: libvirt.NetworkRemove, ChardevDir: redoDir}
	if lo.Network {
		o.Network = libvirt.NetworkKeep
	}
	for i := range disks {
		o.Disks = append(o.Disks, libvirt.DiskSource{Socket: socket, Export: exportName(i)})
	}
	return o
}

// minimalDomain is the domain for a point without domain XML: x86_64 "pc"
// with ACPI, the disks as virtio (vda, vdb …), a serial console logging to
// a file (console-0.log once rewritten), the recorded NIC models on
// user-mode networking.
func minimalDomain(name string, disks int, vm VMOptions) (string, error) {
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
	d := libvirtxml.Domain{Type: typ, Name: name,
		Memory: &libvirtxml.DomainMemory{Value: uint(vm.Memory), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: uint(vm.CPUs)},
		OS: &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}}},
		Features: &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		Devices:  &libvirtxml.DomainDeviceList{},
	}
	for i := range disks {
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
	x, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("minimal domain: %w", err)
	}
	return x, nil
}

// virtioName is the target of the n-th virtio disk: vda … vdz, vdaa ….
func virtioName(n int) string {
	name := ""
	for n++; n > 0; n = (n - 1) / 26 {
		name = string(rune('a'+(n-1)%26)) + name
	}
	return "vd" + name
}
