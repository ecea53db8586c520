package libvirtrestore

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

var files = []string{"/pool/copy-vda.qcow2", "/pool/copy-sda.qcow2", "/pool/copy-vdb.qcow2"}

func parse(t *testing.T, doc string) *libvirtxml.Domain {
	t.Helper()
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		t.Fatalf("rewritten XML does not parse: %v\n%s", err, doc)
	}
	return &d
}

func TestParseRecorded(t *testing.T) {
	r, err := ParseRecorded(liveXML)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "web1" || r.UUID != "4dea22b3-1d52-d8f3-2516-782e98ab3fa0" || !slices.Equal(r.Targets, []string{"vda", "sda", "vdb"}) {
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
		if _, err := ParseRecorded(bad); !errors.Is(err, ErrBadXML) {
			t.Errorf("%q: %v, want ErrBadXML", bad, err)
		}
	}
}

func TestRewriteCopy(t *testing.T) {
	rnd := bytes.NewReader(bytes.Repeat([]byte{0x42, 0x17, 0x99, 0x01}, 64))
	def, err := Rewrite(liveXML, DefineOptions{Name: "copy", NewIdentity: true, Files: files, Disconnect: true, Rand: rnd})
	if err != nil {
		t.Fatal(err)
	}
	d := parse(t, def.XML)
	if d.ID != nil || d.Name != "copy" || def.Name != "copy" {
		t.Errorf("id %v name %q", d.ID, d.Name)
	}
	if d.UUID == "4dea22b3-1d52-d8f3-2516-782e98ab3fa0" || d.UUID == "" || d.UUID != def.UUID {
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

func TestRewriteOriginal(t *testing.T) {
	def, err := Rewrite(liveXML, DefineOptions{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	d := parse(t, def.XML)
	if d.Name != "web1" || d.UUID != "4dea22b3-1d52-d8f3-2516-782e98ab3fa0" || d.SysInfo[0].SMBIOS.System.Entry[1].Value != d.UUID {
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

func TestRewriteRefuses(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		o    DefineOptions
		want error
	}{
		{"not XML", "<domain><name>x", DefineOptions{}, ErrBadXML},
		{"more disks in the point", liveXML, DefineOptions{Files: append(slices.Clone(files), "/pool/x.qcow2")}, ErrBadXML},
		{"fewer disks in the point", liveXML, DefineOptions{Files: files[:2]}, ErrBadXML},
		{"bad new name", liveXML, DefineOptions{Name: "a/b", Files: files}, nil},
		{"no randomness", liveXML, DefineOptions{NewIdentity: true, Files: files, Rand: bytes.NewReader(nil)}, nil},
	}
	for _, tc := range tests {
		_, err := Rewrite(tc.doc, tc.o)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzRewrite(f *testing.F) {
	f.Add(liveXML, true, true)
	f.Add("<domain><name>a</name><devices><disk device='disk'><target dev='vda'/></disk><interface type='user'/></devices></domain>", false, false)
	f.Add("<domain><name>a</name><os><nvram/></os><sysinfo type='smbios'><system/></sysinfo></domain>", true, false)
	f.Add("<domain><name>a</name><seclabel type='static'/><devices><tpm><backend type='emulator'/></tpm></devices></domain>", true, true)
	f.Add("", false, false)
	f.Fuzz(func(t *testing.T, doc string, identity, disconnect bool) {
		rec, err := ParseRecorded(doc)
		if err != nil {
			return
		}
		fs := make([]string, len(rec.Targets))
		for i, tg := range rec.Targets {
			fs[i] = "/pool/x-" + tg + ".qcow2"
		}
		def, err := Rewrite(doc, DefineOptions{Name: "x", NewIdentity: identity, Files: fs, Disconnect: disconnect,
			Rand: bytes.NewReader(bytes.Repeat([]byte{7}, 4096))})
		if err != nil {
			return
		}
		d := parse(t, def.XML)
		if d.Name != "x" || d.ID != nil {
			t.Fatalf("name %q id %v", d.Name, d.ID)
		}
		n := 0
		for _, x := range d.Devices.Disks {
			if x.Source != nil && x.Source.File != nil && strings.HasPrefix(x.Source.File.File, "/pool/") {
				n++
			}
		}
		if n != len(fs) {
			t.Fatalf("%d disks on restored images, want %d", n, len(fs))
		}
	})
}
