package instant

import (
	"slices"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
)

// TestRecoveryOptions: a session's flags become the rewrite's options.
func TestRecoveryOptions(t *testing.T) {
	o := recoveryOptions(LibvirtOptions{}, "web1-ir-1", 2, "/state/ir-1.nbd", "/redo/ir-1")
	want := []libvirt.DiskSource{{Socket: "/state/ir-1.nbd", Export: "disk-0"}, {Socket: "/state/ir-1.nbd", Export: "disk-1"}}
	if o.Name != "web1-ir-1" || !slices.Equal(o.Disks, want) || o.KeepIdentity || !o.FreshNVRAM ||
		o.Network != libvirt.NetworkRemove || o.ChardevDir != "/redo/ir-1" {
		t.Errorf("defaults: %+v", o)
	}
	o = recoveryOptions(LibvirtOptions{KeepIdentity: true, Network: true}, "web1", 1, "/s", "/r")
	if !o.KeepIdentity || !o.FreshNVRAM || o.Network != libvirt.NetworkKeep || len(o.Disks) != 1 {
		t.Errorf("--libvirt-keep-identity --libvirt-network: %+v", o)
	}
}

func TestMinimalDomain(t *testing.T) {
	parsed := func(name string, disks int, vm VMOptions, network bool) (*libvirt.Rewritten, libvirtxml.Domain) {
		t.Helper()
		x, err := minimalDomain(name, disks, vm)
		if err != nil {
			t.Fatal(err)
		}
		r, err := libvirt.Rewrite(x, recoveryOptions(LibvirtOptions{Network: network}, name, disks, "/s", "/r"))
		if err != nil {
			t.Fatalf("%v\n%s", err, x)
		}
		var d libvirtxml.Domain
		if err := d.Unmarshal(r.XML); err != nil {
			t.Fatal(err)
		}
		return r, d
	}
	r, d := parsed("vm-ir-2", 2, VMOptions{Memory: 128, CPUs: 2, Accel: "kvm", NICs: []string{"e1000"}}, true)
	if d.Type != "kvm" || d.Memory.Value != 128 || d.Memory.Unit != "MiB" || d.VCPU.Value != 2 || d.Features.ACPI == nil {
		t.Errorf("domain %s", r.XML)
	}
	if !slices.Equal(r.Targets, []string{"vda", "vdb"}) || d.Devices.Disks[1].Source.Network.Name != "disk-1" {
		t.Errorf("targets %v", r.Targets)
	}
	if d.Devices.Serials[0].Source.File.Path != "/r/console-0.log" {
		t.Errorf("serial %+v", d.Devices.Serials[0].Source.File)
	}
	if len(d.Devices.Interfaces) != 1 || d.Devices.Interfaces[0].Model.Type != "e1000" || d.Devices.Interfaces[0].Source.User == nil {
		t.Errorf("interfaces %+v", d.Devices.Interfaces)
	}
	if _, d := parsed("v", 1, VMOptions{}, false); d.Type != "qemu" || d.Memory.Value != 1024 || len(d.Devices.Interfaces) != 0 {
		t.Errorf("defaults: type %s memory %d interfaces %d", d.Type, d.Memory.Value, len(d.Devices.Interfaces))
	}
}

func TestVirtioName(t *testing.T) {
	for n, want := range map[int]string{0: "vda", 1: "vdb", 25: "vdz", 26: "vdaa", 27: "vdab", 701: "vdzz", 702: "vdaaa"} {
		if got := virtioName(n); got != want {
			t.Errorf("virtioName(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestUUIDRoundTrip(t *testing.T) {
	const s = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
	u, err := parseUUID(s)
	if err != nil || uuidString(u) != s {
		t.Fatalf("%v %s", err, uuidString(u))
	}
	for _, bad := range []string{"", "4dea22b3", "zz" + s[2:]} {
		if _, err := parseUUID(bad); err == nil {
			t.Errorf("parseUUID(%q) accepted", bad)
		}
	}
}
