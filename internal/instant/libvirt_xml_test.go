package instant

import (
	"errors"
	"slices"
	"testing"

	"libvirt.org/go/libvirtxml"
)

const recordedXML = `<domain type='kvm' id='7'>
  <name>web1</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <memory unit='KiB'>524288</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/libvirt/qemu/nvram/web1_VARS.fd</nvram></os>
  <seclabel type='dynamic' model='dac'/>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/vms/web1.qcow2'/>
      <backingStore type='file'><format type='raw'/><source file='/vms/base.img'/></backingStore>
      <target dev='vda' bus='virtio'/><boot order='1'/><alias name='virtio-disk0'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/iso/install.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>
    <disk type='file' device='disk'><source file='/vms/shared.img'/><target dev='vdb' bus='virtio'/><readonly/></disk>
    <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg/data'/><target dev='sda' bus='scsi'/></disk>
    <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/><target dev='vnet3'/><model type='virtio'/></interface>
    <serial type='file'><source path='/var/log/web1.log'/><target port='0'/><log file='/var/log/web1-serial.log'/></serial>
    <console type='file'><source path='/var/log/web1.log'/><target type='serial' port='0'/></console>
    <channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-7-web1/org.qemu.guest_agent.0'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
</domain>`

// parsed runs domainXML and parses its result.
func parsed(t *testing.T, s domainSpec) (domainPlan, libvirtxml.Domain) {
	t.Helper()
	plan, err := domainXML(s)
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(plan.XML); err != nil {
		t.Fatalf("%v\n%s", err, plan.XML)
	}
	return plan, d
}

func TestDomainXMLRecorded(t *testing.T) {
	spec := domainSpec{XML: recordedXML, Name: "web1-ir-1", Disks: 2, Socket: "/state/ir-1.nbd", RedoDir: "/redo/ir-1"}
	plan, d := parsed(t, spec)
	if d.Name != "web1-ir-1" || d.UUID != "" || plan.UUID != "" || d.ID != nil || d.SecLabel != nil {
		t.Errorf("identity: name %q uuid %q id %v seclabel %v", d.Name, d.UUID, d.ID, d.SecLabel)
	}
	if !slices.Equal(plan.Targets, []string{"vda", "sda"}) || !slices.Equal(plan.Dropped, []string{"vdb"}) {
		t.Errorf("targets %v dropped %v", plan.Targets, plan.Dropped)
	}
	if d.OS.NVRam == nil || d.OS.NVRam.NVRam != "" || d.OS.NVRam.Template != "/usr/share/OVMF/OVMF_VARS.fd" {
		t.Errorf("nvram %+v: the original's file must not be shared", d.OS.NVRam)
	}
	disks := d.Devices.Disks
	if len(disks) != 3 {
		t.Fatalf("%d disks, want vda, the empty CD-ROM, sda:\n%s", len(disks), plan.XML)
	}
	for i, want := range map[int]string{0: "disk-0", 2: "disk-1"} {
		x := disks[i]
		n := x.Source.Network
		if n == nil || n.Protocol != "nbd" || n.Name != want || len(n.Hosts) != 1 || n.Hosts[0].Transport != "unix" ||
			n.Hosts[0].Socket != "/state/ir-1.nbd" || x.Driver.Type != "raw" || x.BackingStore != nil || x.Alias != nil {
			t.Errorf("disk %d: %+v %+v", i, x.Source, x.Driver)
		}
	}
	if disks[0].Boot == nil || disks[0].Boot.Order != 1 || disks[0].Target.Bus != "virtio" {
		t.Errorf("vda lost its boot order or bus: %+v %+v", disks[0].Boot, disks[0].Target)
	}
	if src := disks[1].Source; disks[1].Device != "cdrom" || src != nil && (src.File == nil || src.File.File != "") {
		t.Errorf("CD-ROM: %+v", disks[1].Source)
	}
	if len(d.Devices.Interfaces) != 0 {
		t.Errorf("interfaces kept without Network: %+v", d.Devices.Interfaces)
	}
	s, c := d.Devices.Serials[0], d.Devices.Consoles[0]
	if s.Source.File.Path != "/redo/ir-1/console-0.log" || s.Log.File != "/redo/ir-1/console-1.log" ||
		c.Source.File.Path != "/redo/ir-1/console-0.log" {
		t.Errorf("serial %+v log %+v console %+v", s.Source.File, s.Log, c.Source.File)
	}
	if p := d.Devices.Channels[0].Source.UNIX.Path; p != "" {
		t.Errorf("guest agent channel keeps the original's path %q", p)
	}
}

func TestDomainXMLKeepIdentity(t *testing.T) {
	spec := domainSpec{XML: recordedXML, Name: "web1", Disks: 2, Socket: "/s", RedoDir: "/r", KeepIdentity: true, Network: true}
	plan, d := parsed(t, spec)
	if d.UUID != "4dea22b3-1d52-d8f3-2516-782e98ab3fa0" || plan.UUID != d.UUID {
		t.Errorf("uuid %q %q", d.UUID, plan.UUID)
	}
	if len(d.Devices.Interfaces) != 1 || d.Devices.Interfaces[0].MAC == nil || d.Devices.Interfaces[0].MAC.Address != "52:54:00:aa:bb:cc" ||
		d.Devices.Interfaces[0].Target != nil {
		t.Errorf("interfaces %+v", d.Devices.Interfaces)
	}
	spec.KeepIdentity = false
	if _, d := parsed(t, spec); len(d.Devices.Interfaces) != 1 || d.Devices.Interfaces[0].MAC != nil {
		t.Errorf("network without identity: %+v", d.Devices.Interfaces)
	}
}

func TestDomainXMLErrors(t *testing.T) {
	for name, s := range map[string]domainSpec{
		"disk count": {XML: recordedXML, Name: "x", Disks: 1},
		"bad XML":    {XML: "<domain><name>", Name: "x", Disks: 1},
		"no target":  {XML: "<domain><devices><disk type='file' device='disk'/></devices></domain>", Name: "x", Disks: 1},
	} {
		if _, err := domainXML(s); !errors.Is(err, ErrDomainXML) {
			t.Errorf("%s: %v, want ErrDomainXML", name, err)
		}
	}
}

func TestDomainXMLMinimal(t *testing.T) {
	plan, d := parsed(t, domainSpec{Name: "vm-ir-2", Disks: 2, Socket: "/s", RedoDir: "/r",
		VM: VMOptions{Memory: 128, CPUs: 2, Accel: "kvm", NICs: []string{"e1000"}}, Network: true})
	if d.Type != "kvm" || d.Memory.Value != 128 || d.Memory.Unit != "MiB" || d.VCPU.Value != 2 || d.Features.ACPI == nil {
		t.Errorf("domain %s", plan.XML)
	}
	if !slices.Equal(plan.Targets, []string{"vda", "vdb"}) || d.Devices.Disks[1].Source.Network.Name != "disk-1" {
		t.Errorf("targets %v", plan.Targets)
	}
	if d.Devices.Serials[0].Source.File.Path != "/r/console-0.log" {
		t.Errorf("serial %+v", d.Devices.Serials[0].Source.File)
	}
	if len(d.Devices.Interfaces) != 1 || d.Devices.Interfaces[0].Model.Type != "e1000" || d.Devices.Interfaces[0].Source.User == nil {
		t.Errorf("interfaces %+v", d.Devices.Interfaces)
	}
	if _, d := parsed(t, domainSpec{Name: "v", Disks: 1, Socket: "/s", RedoDir: "/r"}); d.Type != "qemu" || d.Memory.Value != 1024 {
		t.Errorf("defaults: type %s memory %d", d.Type, d.Memory.Value)
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

// FuzzDomainXML: any recorded XML gives a domain or ErrDomainXML, never a
// panic, and a result always parses again.
func FuzzDomainXML(f *testing.F) {
	f.Add(recordedXML, 2)
	f.Add("<domain><devices><disk device='disk'><target dev='vda'/></disk></devices></domain>", 1)
	f.Add("<domain/>", 0)
	f.Fuzz(func(t *testing.T, x string, disks int) {
		if x == "" || disks > 64 { // the minimal domain, or more disks than a point has
			return
		}
		plan, err := domainXML(domainSpec{XML: x, Name: "n", Disks: disks, Socket: "/s", RedoDir: "/r"})
		if err != nil {
			if !errors.Is(err, ErrDomainXML) {
				t.Fatalf("error %v is not ErrDomainXML", err)
			}
			return
		}
		var d libvirtxml.Domain
		if err := d.Unmarshal(plan.XML); err != nil || len(plan.Targets) != disks {
			t.Fatalf("result does not parse (%v) or has %d targets, want %d", err, len(plan.Targets), disks)
		}
	})
}
