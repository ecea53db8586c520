package libvirt

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// liveXML is a running domain's XML as libvirt reports it (flags 0):
// run-time id, aliases, vnet names, generated labels, a backing chain.
const liveXML = `<domain type='kvm' id='7'>
  <name>web1</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <genid>43dc0cf8-809b-4adb-9bea-a9abb5f3d90d</genid>
  <memory unit='KiB'>2097152</memory>
  <vcpu placement='static'>2</vcpu>
  <sysinfo type='smbios'><system><entry name='manufacturer'>ACME</entry><entry name='uuid'>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</entry></system></sysinfo>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/libvirt/qemu/nvram/web1_VARS.fd</nvram>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none' discard='unmap'/>
      <source file='/var/lib/libvirt/images/web1.img' index='3'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='block' device='lun'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/vg/data' index='2'/>
      <target dev='sda' bus='scsi'/>
      <alias name='scsi0-0-0-0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web1-top.qcow2' index='1'/>
      <backingStore type='file' index='4'><format type='qcow2'/><source file='/var/lib/libvirt/images/base.qcow2'/><backingStore/></backingStore>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/iso/install.iso' index='5'/>
      <target dev='sdb' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/shared/quorum.img'/>
      <target dev='vdc' bus='virtio'/>
      <shareable/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default' portid='a7a1c1b8-8c2c-4c1a-9a0b-0c4f5b9c3c11' bridge='virbr0'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
      <alias name='net0'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:dd:ee:ff'/>
      <source bridge='br0'/>
      <target dev='vnet4'/>
      <model type='e1000'/>
    </interface>
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
  </devices>
  <seclabel type='dynamic' model='dac' relabel='yes'><label>+64055:+64055</label><imagelabel>+64055:+64055</imagelabel></seclabel>
  <seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>
</domain>`

// recordedXML is a domain with file chardevs, a guest agent channel and a
// read-only data disk, as instant recovery meets it.
const recordedXML = `<domain type='kvm' id='7'>
  <name>web1</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <memory unit='KiB'>524288</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/libvirt/qemu/nvram/web1_VARS.fd</nvram></os>
  <seclabel type='dynamic' model='dac'><label>+64055:+64055</label></seclabel>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2' io='native' cache='none'/><source file='/vms/web1.qcow2'/>
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

const recordedUUID = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"

func files(names ...string) []DiskSource {
	var s []DiskSource
	for _, n := range names {
		s = append(s, DiskSource{File: n})
	}
	return s
}

var restored = files("/pool/copy-vda.qcow2", "/pool/copy-sda.qcow2", "/pool/copy-vdb.qcow2")

// exports are a session's two NBD exports.
var exports = []DiskSource{{Socket: "/state/ir-1.nbd", Export: "disk-0"}, {Socket: "/state/ir-1.nbd", Export: "disk-1"}}

func parse(t *testing.T, doc string) *libvirtxml.Domain {
	t.Helper()
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		t.Fatalf("rewritten XML does not parse: %v\n%s", err, doc)
	}
	return &d
}

func rewrite(t *testing.T, doc string, o RewriteOptions) (*Rewritten, *libvirtxml.Domain) {
	t.Helper()
	r, err := Rewrite(doc, o)
	if err != nil {
		t.Fatal(err)
	}
	return r, parse(t, r.XML)
}

// sevens is an endless source of randomness for UUIDs and MACs.
type sevens struct{}

func (sevens) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 7
	}
	return len(p), nil
}

func TestParseRecorded(t *testing.T) {
	r, err := ParseRecorded(liveXML)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "web1" || r.UUID != recordedUUID || !slices.Equal(r.Targets, []string{"vda", "sda", "vdb"}) {
		t.Fatalf("%+v", r)
	}
	for _, bad := range []string{
		"<domain",
		"<domain><devices/></domain>", // no name
		"<domain><name>../x</name></domain>",
		"<domain><name>a</name><devices><disk device='disk'><target dev='../../etc'/></disk></devices></domain>",
		"<domain><name>a</name><devices><disk device='disk'/></devices></domain>",
		"<domain><name>a</name><devices><disk device='disk'><target dev='vda'/></disk><disk device='disk'><target dev='vda'/></disk></devices></domain>",
	} {
		if _, err := ParseRecorded(bad); !errors.Is(err, ErrDomainXML) {
			t.Errorf("%q: %v, want ErrDomainXML", bad, err)
		}
	}
}

// TestRewriteCopy: a restored copy beside the original (restore
// --to-libvirt --name copy --network disconnect).
func TestRewriteCopy(t *testing.T) {
	rnd := bytes.NewReader(bytes.Repeat([]byte{0x42, 0x17, 0x99, 0x01}, 64))
	def, d := rewrite(t, liveXML, RewriteOptions{Name: "copy", Disks: restored, Network: NetworkDisconnect, Rand: rnd})
	if d.ID != nil || d.Name != "copy" || def.Name != "copy" {
		t.Errorf("id %v name %q", d.ID, d.Name)
	}
	if d.UUID == recordedUUID || d.UUID == "" || d.UUID != def.UUID {
		t.Errorf("uuid %q (result %q), want a new one", d.UUID, def.UUID)
	}
	if e := d.SysInfo[0].SMBIOS.System.Entry; e[1].Value != d.UUID || e[0].Value != "ACME" {
		t.Errorf("SMBIOS system entries %+v, want the new UUID", e)
	}
	if d.GenID == nil || d.GenID.Value != "" {
		t.Errorf("genid %+v, want an empty one (libvirt makes a new generation)", d.GenID)
	}
	if nv := d.OS.NVRam; nv.NVRam != "" || nv.Template != "/usr/share/OVMF/OVMF_VARS.fd" {
		t.Errorf("nvram %+v, want no path (libvirt's own for the new name) and the template kept", nv)
	}
	// Disks: the three backed-up ones on their images, qcow2, no chain;
	// the CD-ROM kept empty; the shareable one left out.
	var got []string
	for _, x := range d.Devices.Disks {
		src := "(empty)"
		if x.Source != nil && x.Source.File != nil && x.Source.File.File != "" {
			src = x.Source.File.File
		}
		drv := ""
		if x.Driver != nil {
			drv = x.Driver.Type
		}
		got = append(got, x.Device+" "+x.Target.Dev+" "+drv+" "+src)
		if x.BackingStore != nil || x.Alias != nil || (x.Source != nil && (x.Source.Block != nil || x.Source.Index != 0)) {
			t.Errorf("disk %s keeps run-time state: %+v", x.Target.Dev, x)
		}
	}
	want := []string{"disk vda qcow2 /pool/copy-vda.qcow2", "disk sda qcow2 /pool/copy-sda.qcow2",
		"disk vdb qcow2 /pool/copy-vdb.qcow2", "cdrom sdb raw (empty)"}
	if !slices.Equal(got, want) {
		t.Errorf("disks\n%q\nwant\n%q", got, want)
	}
	if !slices.Equal(def.Targets, []string{"vda", "sda", "vdb"}) || !slices.Equal(def.Dropped, []string{"vdc"}) {
		t.Errorf("targets %v dropped %v", def.Targets, def.Dropped)
	}
	if x := d.Devices.Disks[0]; x.Driver.Cache != "none" || x.Driver.Discard != "unmap" || x.Boot == nil || x.Address == nil {
		t.Errorf("vda lost its driver options, boot order or address: %+v", x)
	}
	// Interfaces: new MACs in 52:54:00, no vnet names, links down.
	if len(d.Devices.Interfaces) != 2 || !slices.Equal(def.MACs, []string{"52:54:00:42:17:99", "52:54:00:01:42:17"}) {
		t.Fatalf("interfaces %d MACs %v", len(d.Devices.Interfaces), def.MACs)
	}
	for i, n := range d.Devices.Interfaces {
		if n.MAC.Address != def.MACs[i] || n.Target != nil || n.Alias != nil || n.Link == nil || n.Link.State != "down" {
			t.Errorf("interface %d: mac %+v target %+v link %+v", i, n.MAC, n.Target, n.Link)
		}
	}
	if n := d.Devices.Interfaces[0]; n.Source.Network == nil || n.Source.Network.Network != "default" {
		t.Errorf("network source lost: %+v", n.Source)
	}
	// Labels: the dynamic one without its generated labels, the static
	// one not given to the copy.
	if len(d.SecLabel) != 1 || d.SecLabel[0].Type != "dynamic" || d.SecLabel[0].Label != "" || d.SecLabel[0].ImageLabel != "" {
		t.Errorf("seclabels %+v", d.SecLabel)
	}
	notes := strings.Join(def.Notes, "\n")
	for _, w := range []string{"sdb (CD-ROM, not backed up) is kept empty", "vdc (shareable, not backed up) is left out",
		"sda was a SCSI LUN", "sda was a block disk; it is restored as a file", "NVRAM", "TPM", "selinux security label", "domif-setlink"} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes lack %q:\n%s", w, notes)
		}
	}
}

// TestRewriteOriginal: the original replaced (restore --to-libvirt
// --force): its identity, NVRAM file and labels kept.
func TestRewriteOriginal(t *testing.T) {
	def, d := rewrite(t, liveXML, RewriteOptions{Disks: restored, KeepIdentity: true})
	if d.Name != "web1" || d.UUID != recordedUUID || d.SysInfo[0].SMBIOS.System.Entry[1].Value != d.UUID {
		t.Errorf("identity changed: %q %q", d.Name, d.UUID)
	}
	if !slices.Equal(def.MACs, []string{"52:54:00:aa:bb:cc", "52:54:00:dd:ee:ff"}) {
		t.Errorf("MACs %v, want the original's", def.MACs)
	}
	if d.OS.NVRam.NVRam != "/var/lib/libvirt/qemu/nvram/web1_VARS.fd" {
		t.Errorf("nvram %+v, want the original's file", d.OS.NVRam)
	}
	if len(d.SecLabel) != 2 || d.SecLabel[1].Label != "system_u:system_r:svirt_t:s0:c1,c2" {
		t.Errorf("the original's static label: %+v", d.SecLabel)
	}
	for _, n := range d.Devices.Interfaces {
		if n.Link != nil || n.Target != nil {
			t.Errorf("interface %+v: want no link state (connected) and no vnet name", n)
		}
	}
	if strings.Contains(def.XML, "id='7'") || strings.Contains(def.XML, "id=\"7\"") || strings.Contains(def.XML, "43dc0cf8") {
		t.Errorf("run-time id or the old generation ID kept:\n%s", def.XML)
	}
}

// TestRewriteNBD: instant recovery's domain: the point's disks on NBD
// exports, chardevs into the redo directory, off the network.
func TestRewriteNBD(t *testing.T) {
	def, d := rewrite(t, recordedXML, RewriteOptions{Name: "web1-ir-1", Disks: exports, FreshNVRAM: true,
		Network: NetworkRemove, ChardevDir: "/redo/ir-1", Rand: sevens{}})
	if d.Name != "web1-ir-1" || d.UUID == recordedUUID || d.UUID == "" || def.UUID != d.UUID || d.ID != nil {
		t.Errorf("identity: name %q uuid %q id %v", d.Name, d.UUID, d.ID)
	}
	if len(d.SecLabel) != 1 || d.SecLabel[0].Label != "" {
		t.Errorf("seclabels %+v: the original host's generated label kept", d.SecLabel)
	}
	if !slices.Equal(def.Targets, []string{"vda", "sda"}) || !slices.Equal(def.Dropped, []string{"vdb"}) {
		t.Errorf("targets %v dropped %v", def.Targets, def.Dropped)
	}
	if d.OS.NVRam == nil || d.OS.NVRam.NVRam != "" || d.OS.NVRam.Template != "/usr/share/OVMF/OVMF_VARS.fd" {
		t.Errorf("nvram %+v: the original's file must not be shared", d.OS.NVRam)
	}
	disks := d.Devices.Disks
	if len(disks) != 3 {
		t.Fatalf("%d disks, want vda, the empty CD-ROM, sda:\n%s", len(disks), def.XML)
	}
	for i, want := range map[int]string{0: "disk-0", 2: "disk-1"} {
		x := disks[i]
		n := x.Source.Network
		if n == nil || n.Protocol != "nbd" || n.Name != want || len(n.Hosts) != 1 || n.Hosts[0].Transport != "unix" ||
			n.Hosts[0].Socket != "/state/ir-1.nbd" || x.Driver.Type != "raw" || x.Driver.IO != "" || x.BackingStore != nil || x.Alias != nil {
			t.Errorf("disk %d: %+v %+v", i, x.Source, x.Driver)
		}
	}
	if disks[0].Boot == nil || disks[0].Boot.Order != 1 || disks[0].Target.Bus != "virtio" {
		t.Errorf("vda lost its boot order or bus: %+v %+v", disks[0].Boot, disks[0].Target)
	}
	if src := disks[1].Source; disks[1].Device != "cdrom" || src != nil && (src.File == nil || src.File.File != "") {
		t.Errorf("CD-ROM: %+v", disks[1].Source)
	}
	if len(d.Devices.Interfaces) != 0 || len(def.MACs) != 0 {
		t.Errorf("interfaces kept with NetworkRemove: %+v", d.Devices.Interfaces)
	}
	s, c := d.Devices.Serials[0], d.Devices.Consoles[0]
	if s.Source.File.Path != "/redo/ir-1/console-0.log" || s.Log.File != "/redo/ir-1/console-1.log" ||
		c.Source.File.Path != "/redo/ir-1/console-0.log" {
		t.Errorf("serial %+v log %+v console %+v", s.Source.File, s.Log, c.Source.File)
	}
	if p := d.Devices.Channels[0].Source.UNIX.Path; p != "" {
		t.Errorf("guest agent channel keeps the original's path %q", p)
	}
	// Without ChardevDir (a restore) the recorded paths stay.
	if _, d := rewrite(t, recordedXML, RewriteOptions{Disks: files("/a", "/b"), Rand: sevens{}}); d.Devices.Serials[0].Source.File.Path != "/var/log/web1.log" ||
		d.Devices.Channels[0].Source.UNIX.Path == "" {
		t.Errorf("chardevs moved without ChardevDir: %+v", d.Devices.Serials[0].Source.File)
	}
}

// TestRewriteIdentityNetwork: identity, NVRAM and network options on one
// recorded interface.
func TestRewriteIdentityNetwork(t *testing.T) {
	const nvram = "/var/lib/libvirt/qemu/nvram/web1_VARS.fd"
	tests := []struct {
		name        string
		o           RewriteOptions
		keepUUID    bool
		mac, nvram  string // "new": a new 52:54:00 address; "-": no interface
		linkDown    bool
		wantNoteFor string
	}{
		{"restore copy", RewriteOptions{}, false, "new", "", false, "NVRAM"},
		{"restore original", RewriteOptions{KeepIdentity: true}, true, "52:54:00:aa:bb:cc", nvram, false, ""},
		{"restore disconnected", RewriteOptions{KeepIdentity: true, Network: NetworkDisconnect}, true, "52:54:00:aa:bb:cc", nvram, true, "domif-setlink"},
		{"instant kept identity and network", RewriteOptions{KeepIdentity: true, FreshNVRAM: true}, true, "52:54:00:aa:bb:cc", "", false, "NVRAM"},
		{"instant network, new identity", RewriteOptions{FreshNVRAM: true}, false, "new", "", false, ""},
		{"instant off the network", RewriteOptions{KeepIdentity: true, FreshNVRAM: true, Network: NetworkRemove}, true, "-", "", false, "left out of the domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Disks, o.Rand = exports, sevens{}
			def, d := rewrite(t, recordedXML, o)
			if (d.UUID == recordedUUID) != tc.keepUUID || d.UUID == "" {
				t.Errorf("uuid %q", d.UUID)
			}
			switch {
			case tc.mac == "-":
				if len(d.Devices.Interfaces) != 0 {
					t.Errorf("interfaces %+v", d.Devices.Interfaces)
				}
			case len(d.Devices.Interfaces) != 1 || d.Devices.Interfaces[0].Target != nil:
				t.Fatalf("interfaces %+v", d.Devices.Interfaces)
			case tc.mac == "new":
				if m := d.Devices.Interfaces[0].MAC.Address; m == "52:54:00:aa:bb:cc" || !strings.HasPrefix(m, "52:54:00:") || !slices.Equal(def.MACs, []string{m}) {
					t.Errorf("mac %s (%v), want a new one", m, def.MACs)
				}
			case d.Devices.Interfaces[0].MAC.Address != tc.mac:
				t.Errorf("mac %+v, want %s", d.Devices.Interfaces[0].MAC, tc.mac)
			}
			if tc.mac != "-" && (d.Devices.Interfaces[0].Link != nil) != tc.linkDown {
				t.Errorf("link %+v", d.Devices.Interfaces[0].Link)
			}
			if d.OS.NVRam.NVRam != tc.nvram {
				t.Errorf("nvram %q, want %q", d.OS.NVRam.NVRam, tc.nvram)
			}
			if tc.wantNoteFor != "" && !strings.Contains(strings.Join(def.Notes, "\n"), tc.wantNoteFor) {
				t.Errorf("notes lack %q: %q", tc.wantNoteFor, def.Notes)
			}
		})
	}
}

func TestRewriteRefuses(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		o    RewriteOptions
		want error
	}{
		{"not XML", "<domain><name>x", RewriteOptions{}, ErrDomainXML},
		{"unterminated", "<domain><name>", RewriteOptions{Name: "x", Disks: exports[:1]}, ErrDomainXML},
		{"no recorded name to keep", "<domain/>", RewriteOptions{}, ErrDomainXML},
		{"more disks in the point", liveXML, RewriteOptions{Disks: append(slices.Clone(restored), DiskSource{File: "/pool/x.qcow2"})}, ErrDomainXML},
		{"fewer disks in the point", liveXML, RewriteOptions{Disks: restored[:2]}, ErrDomainXML},
		{"fewer disks to serve", recordedXML, RewriteOptions{Name: "x", Disks: exports[:1]}, ErrDomainXML},
		{"no target", "<domain><devices><disk type='file' device='disk'/></devices></domain>", RewriteOptions{Name: "x", Disks: exports[:1]}, ErrDomainXML},
		{"bad new name", liveXML, RewriteOptions{Name: "a/b", Disks: restored}, nil},
		{"no randomness", liveXML, RewriteOptions{Disks: restored, Rand: bytes.NewReader(nil)}, nil},
	}
	for _, tc := range tests {
		_, err := Rewrite(tc.doc, tc.o)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzRewrite: any XML gives a domain or ErrDomainXML, never a panic; a
// result parses again, keeps the name and has every disk of the point on
// its source. disks is the point's disk count when the XML does not say.
func FuzzRewrite(f *testing.F) {
	f.Add(liveXML, uint8(0), false, uint8(1), false)
	f.Add(recordedXML, uint8(2), false, uint8(2), true)
	f.Add("<domain><name>a</name><devices><disk device='disk'><target dev='vda'/></disk><interface type='user'/></devices></domain>", uint8(1), true, uint8(0), false)
	f.Add("<domain><name>a</name><os><nvram/></os><sysinfo type='smbios'><system/></sysinfo></domain>", uint8(0), false, uint8(0), true)
	f.Add("<domain><name>a</name><seclabel type='static'/><devices><tpm><backend type='emulator'/></tpm></devices></domain>", uint8(0), false, uint8(1), false)
	f.Add("<domain><devices><disk device='disk'><target dev='vda'/></disk></devices></domain>", uint8(1), false, uint8(2), true)
	f.Add("<domain/>", uint8(0), true, uint8(0), true)
	f.Add("", uint8(0), true, uint8(0), false)
	f.Fuzz(func(t *testing.T, doc string, disks uint8, keep bool, network uint8, nbd bool) {
		n := int(disks % 65)
		if rec, err := ParseRecorded(doc); err == nil {
			n = len(rec.Targets)
		}
		o := RewriteOptions{Name: "x", KeepIdentity: keep, Network: []NetworkMode{NetworkKeep, NetworkDisconnect, NetworkRemove}[network%3],
			ChardevDir: "/redo", FreshNVRAM: nbd, Rand: sevens{}}
		for i := range n {
			if nbd {
				o.Disks = append(o.Disks, DiskSource{Socket: "/s", Export: "disk-" + string(rune('a'+i))})
			} else {
				o.Disks = append(o.Disks, DiskSource{File: "/pool/x-" + string(rune('a'+i)) + ".qcow2"})
			}
		}
		def, err := Rewrite(doc, o)
		if err != nil {
			if !errors.Is(err, ErrDomainXML) {
				t.Fatalf("error %v is not ErrDomainXML", err)
			}
			return
		}
		d := parse(t, def.XML)
		if d.Name != "x" || d.ID != nil || len(def.Targets) != n {
			t.Fatalf("name %q id %v targets %v, want %d", d.Name, d.ID, def.Targets, n)
		}
		on := 0
		for _, x := range d.Devices.Disks {
			if x.Source != nil && (x.Source.File != nil && strings.HasPrefix(x.Source.File.File, "/pool/") ||
				x.Source.Network != nil && x.Source.Network.Protocol == "nbd") {
				on++
			}
		}
		if on != n {
			t.Fatalf("%d disks on the point's sources, want %d", on, n)
		}
	})
}
