package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/holdfast-backup/holdfast/internal/libvirtrestore"
	"github.com/holdfast-backup/holdfast/internal/testutil/libvirtd"
)

// restoredDomain is --to-libvirt's --json output.
type restoredDomain struct {
	Point string `json:"point"`
	libvirtrestore.Result
}

func (td *testDomain) domainXML(name string) *libvirtxml.Domain {
	td.t.Helper()
	out, err := td.d.Virsh(context.Background(), "dumpxml", name)
	if err != nil {
		td.t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(out); err != nil {
		td.t.Fatal(err)
	}
	return &d
}

func (td *testDomain) state(name string) string {
	td.t.Helper()
	out, err := td.d.Virsh(context.Background(), "domstate", name)
	if err != nil {
		td.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// sameImage checks that the qcow2 image holds exactly want (qemu-img
// compare, shared lock: the domain may be running).
func sameImage(t *testing.T, image string, want []byte) {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "want.raw")
	if err := os.WriteFile(raw, want, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-img", "compare", "-U", "-f", "raw", "-F", "qcow2", raw, image).CombinedOutput(); err != nil {
		t.Fatalf("%s differs from the point: %v: %s", image, err, out)
	}
}

func macs(d *libvirtxml.Domain) []string {
	var m []string
	for _, n := range d.Devices.Interfaces {
		if n.MAC != nil {
			m = append(m, n.MAC.Address)
		}
	}
	return m
}

func diskTargets(d *libvirtxml.Domain) []string {
	var s []string
	for _, x := range d.Devices.Disks {
		src := ""
		if x.Source != nil && x.Source.File != nil {
			src = x.Source.File.File
		}
		drv := ""
		if x.Driver != nil {
			drv = x.Driver.Type
		}
		s = append(s, x.Device+":"+x.Target.Dev+":"+drv+":"+src)
	}
	return s
}

func (e *env) restoreLibvirt(td *testDomain, args ...string) restoredDomain {
	e.t.Helper()
	out := e.ok(append([]string{"restore", "--json", "--to-libvirt", "--libvirt-uri", td.d.URI}, args...)...)
	var r restoredDomain
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("restore --json %q: %v", out, err)
	}
	return r
}

// TestLibvirtRestore: a point of a running TCG domain restored into
// libvirt as a copy (new name, UUID and MACs) that starts, with the disk
// content of the point while the original runs on untouched; a second
// restore without --force is refused and writes nothing; with --force it
// replaces the copy.
func TestLibvirtRestore(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	d := libvirtd.Start(t)
	ro := filepath.Join(t.TempDir(), "ro.img")
	if err := os.WriteFile(ro, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	m := d.StartDomain(t, "hf-lvr", 64,
		"<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/><readonly/></disk>",
		"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='"+ro+"'/><target dev='vdb' bus='virtio'/><readonly/></disk>",
		"<interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>")
	td := &testDomain{t: t, d: d, m: m, src: []string{"--libvirt-uri", d.URI, "libvirt:///hf-lvr"},
		tmp: filepath.Join(e.dir, "tmp"), expected: make([]byte, 64<<20)}
	if err := os.Mkdir(td.tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "TMPDIR="+td.tmp)
	td.write(0, 4<<20, 0x11)
	td.write(30<<20, 1<<20, 0x22)
	b1 := e.backupJSON("vmr", td.src...)
	want1 := slices.Clone(td.expected)
	td.write(8<<20, 1<<20, 0x33) // after the point: not in the copy
	orig := td.domainXML("hf-lvr")

	pool := t.TempDir()
	r := e.restoreLibvirt(td, b1.Point, "--name", "copy", "--start", "--pool-dir", pool)
	img := filepath.Join(pool, "copy-vda.qcow2")
	if r.Domain != "copy" || !r.Started || !r.NewIdentity || len(r.Disks) != 1 || r.Disks[0].File != img || r.Disks[0].Target != "vda" {
		t.Fatalf("restore: %+v", r)
	}
	if st := td.state("copy"); st != "running" {
		t.Fatalf("copy is %q", st)
	}
	sameImage(t, img, want1)
	cp := td.domainXML("copy")
	if cp.UUID == orig.UUID || cp.UUID != r.UUID {
		t.Errorf("copy UUID %s (reported %s), original %s", cp.UUID, r.UUID, orig.UUID)
	}
	if om, cm := macs(orig), macs(cp); len(cm) != 1 || len(om) != 1 || cm[0] == om[0] || !slices.Equal(cm, r.MACs) {
		t.Errorf("copy MACs %v (reported %v), original %v", cm, r.MACs, om)
	}
	// The CD-ROM stays (empty: libvirt then reports no format), the
	// read-only disk is not in the backup.
	if got := diskTargets(cp); !slices.Equal(got, []string{"disk:vda:qcow2:" + img, "cdrom:hdc::"}) {
		t.Errorf("copy's disks %v", got)
	}
	// The original runs on, on its own disk, with its own identity.
	if now := td.domainXML("hf-lvr"); td.state("hf-lvr") != "running" || now.UUID != orig.UUID ||
		!slices.Equal(diskTargets(now), diskTargets(orig)) || !slices.Equal(macs(now), macs(orig)) {
		t.Errorf("the original changed: %v %v", diskTargets(now), macs(now))
	}

	// Again without --force: refused, nothing written.
	before, _ := os.Stat(img)
	other := filepath.Join(pool, "other-vda.qcow2")
	if err := os.WriteFile(other, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--name", "copy"},  // the domain exists
		{},                  // the original exists
		{"--name", "other"}, // no such domain, but its image file is there
	} {
		res := e.run(append([]string{"restore", b1.Point, "--to-libvirt", "--libvirt-uri", d.URI, "--pool-dir", pool}, args...)...)
		if res.code != exitUsage || !strings.Contains(res.stderr, "exist") {
			t.Errorf("restore %v: exit %d %s, want 2", args, res.code, res.stderr)
		}
	}
	after, _ := os.Stat(img)
	ents, _ := os.ReadDir(pool)
	if kept, _ := os.ReadFile(other); string(kept) != "keep" || !after.ModTime().Equal(before.ModTime()) || len(ents) != 2 {
		t.Errorf("a refused restore wrote: %v", ents)
	}
	if td.state("copy") != "running" || td.domainXML("copy").UUID != r.UUID {
		t.Error("a refused restore changed the copy")
	}
	if _, err := d.Virsh(context.Background(), "dominfo", "other"); err == nil {
		t.Error("a refused restore defined a domain")
	}

	// With --force into the copy's name: the running copy is replaced by a
	// later point, network disconnected, not started.
	b2 := e.backupJSON("vmr", td.src...)
	r2 := e.restoreLibvirt(td, b2.Point, "--name", "copy", "--force", "--network", "disconnect", "--pool-dir", pool)
	if r2.Replaced != "copy" || r2.Started || !r2.Disconnected || r2.UUID == r.UUID {
		t.Fatalf("forced restore: %+v", r2)
	}
	if st := td.state("copy"); st != "shut off" {
		t.Errorf("replaced copy is %q", st)
	}
	sameImage(t, img, td.expected)
	cp2 := td.domainXML("copy")
	if cp2.UUID != r2.UUID || len(cp2.Devices.Interfaces) != 1 || cp2.Devices.Interfaces[0].Link == nil ||
		cp2.Devices.Interfaces[0].Link.State != "down" {
		t.Errorf("replaced copy: uuid %s, interfaces %+v", cp2.UUID, cp2.Devices.Interfaces)
	}
	if td.state("hf-lvr") != "running" || td.domainXML("hf-lvr").UUID != orig.UUID {
		t.Error("replacing the copy touched the original")
	}
	if _, err := d.Virsh(context.Background(), "start", "copy"); err != nil {
		t.Errorf("the replaced copy does not start: %v", err)
	}

	// --force without --name replaces the original itself: its UUID and
	// MAC kept, its checkpoint metadata gone, so the next backup of it
	// reads the restored disk in full.
	if len(td.checkpoints()) != 1 {
		t.Fatalf("checkpoints before: %v", td.checkpoints())
	}
	r3 := e.restoreLibvirt(td, b1.Point, "--force", "--start", "--pool-dir", pool)
	img3 := filepath.Join(pool, "hf-lvr-vda.qcow2")
	now := td.domainXML("hf-lvr")
	if r3.Replaced != "hf-lvr" || r3.NewIdentity || !r3.Started || r3.UUID != orig.UUID || now.UUID != orig.UUID ||
		!slices.Equal(macs(now), macs(orig)) || td.state("hf-lvr") != "running" {
		t.Fatalf("replacing the original: %+v, uuid %s macs %v", r3, now.UUID, macs(now))
	}
	if got := diskTargets(now); got[0] != "disk:vda:qcow2:"+img3 {
		t.Errorf("the original's disks now %v", got)
	}
	sameImage(t, img3, want1)
	if cps := td.checkpoints(); len(cps) != 0 {
		t.Errorf("checkpoints after the replace: %v", cps)
	}
	td.expected = want1
	b4 := e.backupJSON("vmr", td.src...)
	if d4 := b4.Disks[0]; !strings.Contains(d4.CBT, "gone") || d4.BytesRead != 5<<20 {
		t.Errorf("backup after the replace: cbt %q read %d", d4.CBT, d4.BytesRead)
	}
	e.restoreEquals(b4.Point, want1)
	if td.state("copy") != "running" || td.domainXML("copy").UUID != r2.UUID {
		t.Error("replacing the original touched the copy")
	}
}

// TestLibvirtRestoreRefused: flags that do not go together, a point that
// is not of a libvirt domain and a remote daemon are usage errors, before
// any connection.
func TestLibvirtRestoreRefused(t *testing.T) {
	e := newEnv(t)
	e.init()
	img := filepath.Join(e.dir, "d.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	b := e.backupJSON("plain", img)
	sock := "qemu+unix:///system?socket=" + filepath.Join(e.dir, "none.sock")
	tests := []struct {
		args []string
		in   string
	}{
		{[]string{"--start"}, "--start goes with --to-libvirt"},
		{[]string{"--to", filepath.Join(e.dir, "x.img"), "--pool-dir", e.dir}, "--pool-dir goes with --to-libvirt"},
		{[]string{"--to-libvirt", "--to", filepath.Join(e.dir, "x.img")}, "--to does not go with --to-libvirt"},
		{[]string{"--to-libvirt", "--to-vsphere", "vsphere://u@h/dc"}, "--to-vsphere does not go with --to-libvirt"},
		{[]string{"--to-libvirt", "--network", "default=br0"}, "keep or disconnect"},
		{[]string{"--to-libvirt", "--libvirt-uri", "qemu+ssh://root@kvm1/system"}, "must be the local one"},
		{[]string{"--to-libvirt", "--libvirt-uri", sock}, "records no libvirt domain XML"},
	}
	for _, tc := range tests {
		r := e.run(append([]string{"restore", b.Point}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.in) || strings.Contains(r.stderr, "root@") {
			t.Errorf("restore %v: exit %d %q, want 2 and %q", tc.args, r.code, r.stderr, tc.in)
		}
	}
}
