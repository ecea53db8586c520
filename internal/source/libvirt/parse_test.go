package libvirt

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/libvirtconn"
	"github.com/holdfast-backup/holdfast/internal/source"
)

const sampleXML = `<domain type='kvm'>
  <name>web1</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <memory unit='GiB'>2</memory><vcpu>4</vcpu>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/web1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg/data'/><target dev='sda' bus='scsi'/></disk>
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
    <disk type='file' device='disk'><source file='/s.img'/><target dev='vdc' bus='virtio'/><shareable/></disk>
    <disk type='file' device='disk'><source file='/ro.img'/><target dev='vdd' bus='virtio'/><readonly/></disk>
    <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/><model type='virtio'/></interface>
  </devices>
</domain>`

func TestParseDomain(t *testing.T) {
	info, err := parseDomain(sampleXML)
	if err != nil {
		t.Fatal(err)
	}
	want := []vmDisk{{Target: "vda", Bus: "virtio", Format: "qcow2", File: "/var/lib/libvirt/images/web1.qcow2"},
		{Target: "sda", Bus: "scsi", Format: "raw", File: "/dev/vg/data"}}
	if len(info.Disks) != 2 || info.Disks[0] != want[0] || info.Disks[1] != want[1] {
		t.Fatalf("disks %+v", info.Disks)
	}
	if strings.Join(info.Skipped, ",") != "hdc: CD-ROM,vdc: shareable,vdd: read-only" {
		t.Fatalf("skipped %v", info.Skipped)
	}
	if info.Name != "web1" || info.CPUs != 4 || info.MemoryMiB != 2048 || len(info.NICs) != 1 ||
		info.NICs[0].Network != "default" || info.NICs[0].Model != "virtio" || info.NICs[0].MAC != "52:54:00:aa:bb:cc" {
		t.Fatalf("info %+v", info)
	}
	if _, err := parseDomain("<domain><devices><disk device='disk'/></devices></domain>"); err == nil {
		t.Fatal("a disk without target was accepted")
	}
	if _, err := parseDomain("<domain"); err == nil {
		t.Fatal("broken XML was accepted")
	}
}

func FuzzParseDomain(f *testing.F) {
	f.Add(sampleXML)
	f.Add("<domain><memory unit='zz'>1</memory></domain>")
	f.Add("")
	f.Fuzz(func(t *testing.T, doc string) {
		info, err := parseDomain(doc)
		if err == nil {
			for _, d := range info.Disks {
				if d.Target == "" {
					t.Fatal("a disk without target")
				}
			}
			_ = info.vmConfig(doc, nil)
		}
	})
}

func TestPickBase(t *testing.T) {
	p := checkpointPrefix("t1")
	tests := []struct {
		prev     string
		names    []string
		base, in string
	}{
		{"", []string{p + "a"}, "", "no previous"},
		{p + "a", []string{"other", p + "a"}, p + "a", ""},
		{p + "a", []string{"other"}, "", "is gone"},
		{"hf-x-1", []string{"hf-x-1"}, "", "not a Holdfast checkpoint"},
		{checkpointPrefix("t2") + "a", []string{checkpointPrefix("t2") + "a"}, "", "not a Holdfast checkpoint"},
		{p, []string{p}, "", "not a Holdfast checkpoint"},
	}
	for _, tc := range tests {
		base, why := pickBase(tc.prev, p, tc.names)
		if base != tc.base || !strings.Contains(why, tc.in) {
			t.Errorf("pickBase(%q, %v) = %q, %q", tc.prev, tc.names, base, why)
		}
	}
}

func TestBackupXML(t *testing.T) {
	disks := []vmDisk{{Target: "vda", Format: "qcow2"}, {Target: "vdb", Format: "raw"}}
	x := backupXML("/run/a'b/nbd.sock", "/run/a'b", disks, []diskBase{{base: "holdfast-t-1"}, {reason: "raw"}})
	want := "<domainbackup mode='pull'><server transport='unix' socket='/run/a&#39;b/nbd.sock'/><disks>" +
		"<disk name='vda' backup='yes' type='file' exportname='vda' backupmode='incremental' incremental='holdfast-t-1' exportbitmap='holdfast-vda'><scratch file='/run/a&#39;b/vda.scratch'/></disk>" +
		"<disk name='vdb' backup='yes' type='file' exportname='vdb' backupmode='full'><scratch file='/run/a&#39;b/vdb.scratch'/></disk></disks></domainbackup>"
	if x != want {
		t.Fatalf("backup XML\n%s\nwant\n%s", x, want)
	}
	if x := backupXML("/s", "/d", disks, make([]diskBase, 2)); strings.Contains(x, "incremental") || strings.Contains(x, "exportbitmap") || strings.Contains(x, "backupmode") {
		t.Fatalf("full backup XML: %s", x)
	}
	if x := checkpointXML("c<1", disks); x != "<domaincheckpoint><name>c&lt;1</name><disks><disk name='vda' checkpoint='bitmap'/><disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>" {
		t.Fatalf("checkpoint XML %s", x)
	}
}

func TestLocator(t *testing.T) {
	tests := []struct {
		spec, uri, socket, inErr, str, user string
	}{
		{spec: "libvirt:///web", socket: libvirtconn.DefaultSocket, str: "web on qemu:///system"},
		{spec: "libvirt:///web", uri: "qemu+unix:///system?socket=/tmp/s", socket: "/tmp/s"},
		{spec: "libvirt+ssh://root@kvm1/db", socket: libvirtconn.DefaultSocket, str: "db on qemu+ssh://kvm1/system"},
		{spec: "libvirt+ssh://root@kvm1:2222/db", socket: libvirtconn.DefaultSocket, str: "db on qemu+ssh://kvm1:2222/system"},
		{spec: "libvirt+ssh://a%40b@kvm1/db", socket: libvirtconn.DefaultSocket, str: "db on qemu+ssh://kvm1/system", user: "a@b"},
		{spec: "libvirt:///web", uri: "qemu:///session", inErr: "only the local"},
		{spec: "libvirt:///web", uri: "xen:///system", inErr: "only qemu:///system"},
		{spec: "libvirt:///web", uri: "qemu:///system?x=1", inErr: "unexpected query"},
	}
	for _, tc := range tests {
		s, err := source.Parse(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		l, err := FromSpec(s, tc.uri)
		if err != nil {
			t.Fatal(err)
		}
		if tc.str != "" && l.String() != tc.str {
			t.Errorf("%s: String %q, want %q", tc.spec, l.String(), tc.str)
		}
		if u, err := url.Parse(l.URI); tc.user != "" && (err != nil || u.User.Username() != tc.user) {
			t.Errorf("%s: URI %s loses the user %q", tc.spec, libvirtconn.Redact(l.URI), tc.user)
		}
		sock, err := libvirtconn.Socket(l.URI)
		switch {
		case tc.inErr != "" && (err == nil || !strings.Contains(err.Error(), tc.inErr) || !errors.Is(err, libvirtconn.ErrUnsupportedURI)):
			t.Errorf("%s %s: error %v, want %q", tc.spec, tc.uri, err, tc.inErr)
		case tc.inErr == "" && (err != nil || sock != tc.socket):
			t.Errorf("%s %s: socket %q %v", tc.spec, tc.uri, sock, err)
		}
	}
	if _, err := FromSpec(source.Spec{}, ""); err == nil {
		t.Fatal("a non-libvirt spec was accepted")
	}
}
