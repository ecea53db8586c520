package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/find"
)

const simVM = "DC0_H0_VM0"

// vsphereEnv is a repository, a simulator with CBT whose test VM has a
// 64 MiB disk, and the disk's expected content kept in step with writes.
type vsphereEnv struct {
	*env
	sim      *vcsim.Sim
	cbt      *vcsim.CBT
	expected []byte
}

func newVSphereEnv(t *testing.T) *vsphereEnv {
	t.Helper()
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	sim := vcsim.Start(t, nil)
	sim.RequireSession(true)
	cbt := sim.CBT()
	cbt.PageSize = 16 << 20 // four answers per query: the client must page
	sim.SetDiskCapacity(t, simVM, 0, 64<<20)
	e.vars = append(e.vars, envVSpherePassword+"="+vcsim.Password)
	v := &vsphereEnv{env: e, sim: sim, cbt: cbt, expected: make([]byte, 64<<20)}
	v.write(0, pseudoRandom(1, 4<<20))
	v.write(40<<20, pseudoRandom(2, 1<<20))
	return v
}

func (v *vsphereEnv) write(off int64, b []byte) {
	v.sim.WriteDisk(v.t, simVM, 0, off, b)
	copy(v.expected[off:], b)
}

// source is the VM's URL and the flags that trust the simulator.
func (v *vsphereEnv) source() []string {
	return []string{v.sim.URL("/DC0/vm/" + simVM), "--tls-thumbprint", v.sim.Thumbprint}
}

// snapshots counts the VM's snapshots.
func (v *vsphereEnv) snapshots() int {
	v.t.Helper()
	c := v.sim.Connect(v.t)
	vm, err := find.NewFinder(c.Client).VirtualMachine(context.Background(), "/DC0/vm/"+simVM)
	if err != nil {
		v.t.Fatal(err)
	}
	inv, err := vsphere.List(context.Background(), c, vm.InventoryPath)
	if err != nil {
		v.t.Fatal(err)
	}
	return inv.Datacenters[0].VMs[0].Snapshots
}

func (v *vsphereEnv) openRepo() *repo.Repository {
	v.t.Helper()
	r, err := repo.Open(context.Background(), storage.NewLocal(v.repo), []byte("correct horse"), repo.Options{})
	if err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() { r.Close() })
	return r
}

func TestVSphereBackupIncremental(t *testing.T) {
	v := newVSphereEnv(t)
	b1 := v.backupJSON("vs1", v.source()...)
	d := b1.Disks[0]
	if d.Transport != "nbd" || d.Format != "vmdk-flat" || d.Size != 64<<20 || d.BytesRead != 5<<20 ||
		!strings.Contains(d.CBT, "no previous") || !strings.HasPrefix(d.ChangeID, "52 ") || d.Location != "[LocalDS_0] "+simVM+"/disk1.vmdk" {
		t.Fatalf("first backup: %+v", d)
	}
	if !strings.Contains(b1.Notes["cbt_enabled"], "turned on") || !strings.Contains(b1.Notes["transport_choice"], "disk 0: direct: not configured; hotadd: not configured; nbd: used") ||
		!strings.HasPrefix(b1.Notes["guest_quiesce"], "crash-consistent") {
		t.Errorf("notes %v", b1.Notes)
	}
	if n := v.snapshots(); n != 0 {
		t.Errorf("%d snapshots left after the backup", n)
	}
	m, err := v.openRepo().ResolvePoint(context.Background(), b1.Point)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config; c == nil || c.Platform != "vsphere" || c.Name != simVM || c.CPUs == 0 || c.MemoryMiB == 0 ||
		len(c.Disks) != 1 || c.Disks[0].Controller != "pvscsi 0" || c.Disks[0].CapacityBytes != 64<<20 || len(c.NICs) != 1 || c.NICs[0].Network == "" {
		t.Errorf("VM configuration in the manifest: %+v", m.Config)
	}
	want1 := bytes.Clone(v.expected)

	// 1 % of the disk changes: 640 KiB in three places, touching four
	// 256 KiB chunks.
	v.write(16<<20, pseudoRandom(3, 128<<10))
	v.write(30<<20+100<<10, pseudoRandom(4, 300<<10)) // crosses into a second chunk
	v.write(63<<20, pseudoRandom(5, 212<<10))
	b2 := v.backupJSON("vs1", v.source()...)
	d = b2.Disks[0]
	if d.CBT != "used" || d.ChangeBase != b1.Disks[0].ChangeID || d.ChangeID == d.ChangeBase || d.BytesRead != 4*256<<10 {
		t.Fatalf("incremental: cbt %q base %q (want %q) read %d, want 4 chunks", d.CBT, d.ChangeBase, b1.Disks[0].ChangeID, d.BytesRead)
	}
	want2 := bytes.Clone(v.expected)

	// CBT reset: a full read compared by hash, a warning, no failure.
	v.cbt.Reset()
	v.write(8<<20, pseudoRandom(6, 4096))
	b3 := v.backupJSON("vs1", v.source()...)
	d = b3.Disks[0]
	if !strings.Contains(d.CBT, "another tracking instance") || len(d.Warnings) == 0 || d.BytesRead < 5<<20 || d.BytesNew > 256<<10 {
		t.Fatalf("after a CBT reset: cbt %q warnings %v read %d new %d", d.CBT, d.Warnings, d.BytesRead, d.BytesNew)
	}
	v.restoreEquals(b1.Point, want1)
	v.restoreEquals(b2.Point, want2)
	v.restoreEquals(b3.Point, v.expected)
	if n := v.snapshots(); n != 0 {
		t.Errorf("%d snapshots left", n)
	}
}

func TestVSphereBackupRefused(t *testing.T) {
	v := newVSphereEnv(t)
	const wrong = "Wr0ng-pa55"
	tests := []struct {
		name string
		vars []string
		args []string
		code int
		want string
	}{
		{name: "wrong password", vars: []string{envVSpherePassword + "=" + wrong}, args: v.source(), code: exitFailure, want: "incorrect user name or password"},
		{name: "wrong thumbprint", args: []string{v.sim.URL("/DC0/vm/" + simVM), "--tls-thumbprint", strings.Repeat("AB:", 31) + "AB"}, code: exitFailure, want: "does not match the pinned thumbprint"},
		{name: "untrusted", args: []string{v.sim.URL("/DC0/vm/" + simVM)}, code: exitFailure, want: "not trusted"},
		{name: "no password", vars: []string{envVSpherePassword + "="}, args: v.source(), code: exitUsage, want: "no vSphere password"},
		{name: "password in URL", args: []string{strings.Replace(v.sim.URL("/DC0/vm/"+simVM), "@", ":"+wrong+"@", 1)}, code: exitUsage, want: "does not go in the URL"},
		{name: "no such VM", args: append([]string{v.sim.URL("/DC0/vm/nope")}, v.source()[1:]...), code: exitFailure, want: "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			saved := v.vars
			v.vars = append(append([]string{}, v.vars...), tc.vars...)
			defer func() { v.vars = saved }()
			r := v.run(append([]string{"backup", "--name", "vs1"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d with %q", r.code, r.stderr, tc.code, tc.want)
			}
			if strings.Contains(r.stdout+r.stderr, wrong) || strings.Contains(r.stdout+r.stderr, vcsim.Password) {
				t.Errorf("a password is in the output: %q %q", r.stdout, r.stderr)
			}
		})
	}
	if n := v.snapshots(); n != 0 {
		t.Errorf("%d snapshots left", n)
	}
}

// stopAtQuery makes the next QueryChangedDiskAreas wait until released;
// started is closed when a backup reaches it.
func stopAtQuery(cbt *vcsim.CBT) (started <-chan struct{}, release func()) {
	s, r := make(chan struct{}), make(chan struct{})
	var once, relOnce sync.Once
	cbt.OnQuery = func() {
		once.Do(func() { close(s) })
		<-r
	}
	return s, func() { relOnce.Do(func() { close(r) }) }
}

func TestVSphereInterruptedBackup(t *testing.T) {
	v := newVSphereEnv(t)
	args := append([]string{"backup", "--json", "--name", "vs1"}, v.source()...)

	// Ctrl-C while the disk is being read: exit 130, the snapshot removed.
	started, release := stopAtQuery(v.cbt)
	defer release()
	cmd := v.command(context.Background(), args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	release() // the simulator holds the VM while it answers
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != exitInterrupted {
		t.Fatalf("interrupted backup: %v", err)
	}
	if n := v.snapshots(); n != 0 {
		t.Fatalf("%d snapshots left after Ctrl-C", n)
	}

	// kill -9 at the same place leaves the snapshot; the next run removes
	// it and says so.
	started, release = stopAtQuery(v.cbt)
	defer release()
	cmd = v.command(context.Background(), args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	release()
	v.cbt.OnQuery = nil
	if n := v.snapshots(); n != 1 {
		t.Fatalf("%d snapshots after kill -9, want the backup's", n)
	}
	b := v.backupJSON("vs1", v.source()...)
	if got := b.Notes["cleaned_leftovers"]; !strings.HasPrefix(got, "snapshot holdfast-") {
		t.Errorf("cleaned_leftovers %q", got)
	}
	if n := v.snapshots(); n != 0 {
		t.Errorf("%d snapshots left", n)
	}
	v.restoreEquals(b.Point, v.expected)
}

func TestVSphereLs(t *testing.T) {
	v := newVSphereEnv(t)
	out := v.ok(append([]string{"vsphere", "ls", "--json"}, v.source()...)...)
	var inv vsphere.Inventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(inv.Datacenters) != 1 || len(inv.Datacenters[0].VMs) != 1 {
		t.Fatalf("inventory of one VM: %s", out)
	}
	dc := inv.Datacenters[0]
	vm := dc.VMs[0]
	if dc.Name != "DC0" || len(dc.Hosts) == 0 || len(dc.Datastores) == 0 || dc.Datastores[0].Capacity == 0 ||
		vm.Path != "/DC0/vm/"+simVM || vm.CBT != "off" || len(vm.Disks) != 1 || vm.Disks[0].Capacity != 64<<20 ||
		vm.Disks[0].Controller != "pvscsi 0" || vm.Disks[0].Mode != "persistent" {
		t.Errorf("inventory: %s", out)
	}
	v.backupJSON("vs1", v.source()...)
	all := v.ok("vsphere", "ls", v.sim.URL(""), "--tls-thumbprint", v.sim.Thumbprint)
	for _, want := range []string{"DATACENTER", "/DC0", "LocalDS_0", "DC0_H0", "/DC0/vm/" + simVM + "  ", "DC0_C0_RP0_VM0",
		"[LocalDS_0] " + simVM + "/disk1.vmdk", "pvscsi 0:0", "backed up"} {
		if !strings.Contains(all, want) {
			t.Errorf("table lacks %q:\n%s", want, all)
		}
	}
	if !strings.Contains(all, "on ") { // CBT turned on by the backup
		t.Errorf("CBT state not shown:\n%s", all)
	}
	r := v.run("vsphere", "ls", v.sim.URL("/DC9"), "--tls-thumbprint", v.sim.Thumbprint)
	if r.code != exitFailure || !strings.Contains(r.stderr, "nothing at inventory path") {
		t.Errorf("missing datacenter: exit %d %q", r.code, r.stderr)
	}
}

func TestVSphereReadFailureAndQuiesce(t *testing.T) {
	v := newVSphereEnv(t)
	flat := v.sim.Disks(t, simVM)[0].Flat

	// The flat file vanishes once the disk is open: the backup fails with
	// the datastore's answer, creates no point and removes its snapshot.
	v.cbt.OnQuery = func() {
		if err := os.Rename(flat, flat+".away"); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Error(err)
		}
	}
	r := v.run(append([]string{"backup", "--name", "vs1"}, v.source()...)...)
	v.cbt.OnQuery = nil
	if err := os.Rename(flat+".away", flat); err != nil {
		t.Fatal(err)
	}
	if r.code != exitFailure || !strings.Contains(r.stderr, "no restore point was created") || !strings.Contains(r.stderr, "404") {
		t.Errorf("read failure: exit %d, stderr %q", r.code, r.stderr)
	}
	if n := v.snapshots(); n != 0 {
		t.Errorf("%d snapshots left after a failed read", n)
	}
	if ps := v.points(); len(ps) != 0 {
		t.Errorf("points after a failed backup: %+v", ps)
	}

	// --quiesce: quiesced when VMware Tools can, crash-consistent with the
	// reason when it cannot.
	b := v.backupJSON("vs1", append(v.source(), "--quiesce")...)
	if b.Notes["guest_quiesce"] != "quiesced through VMware Tools" {
		t.Errorf("guest_quiesce %q", b.Notes["guest_quiesce"])
	}
	v.cbt.FailQuiesce(true)
	out := v.ok(append([]string{"backup", "--name", "vs1", "--quiesce"}, v.source()...)...)
	if !strings.Contains(out, "guest quiesce: crash-consistent: the quiesced snapshot failed") {
		t.Errorf("fallback not reported:\n%s", out)
	}
	v.restoreEquals("vs1:latest", v.expected)
}

// TestVSphereBackupDirect: with --datastore-path the disk is read from the
// datastore where this host sees it (the direct transport), and auto says
// so; a forced direct transport without a path is refused with the reason.
func TestVSphereBackupDirect(t *testing.T) {
	v := newVSphereEnv(t)
	dir := v.sim.DatastoreDir(t, "LocalDS_0")
	b := v.backupJSON("vs1", append(v.source(), "--datastore-path", "LocalDS_0="+dir)...)
	d := b.Disks[0]
	if d.Transport != "direct" || d.BytesRead != 5<<20 || !strings.Contains(b.Notes["transport_choice"], "disk 0: direct: used") {
		t.Fatalf("direct backup: transport %q read %d notes %v", d.Transport, d.BytesRead, b.Notes)
	}
	v.restoreEquals(b.Point, v.expected)
	r := v.run(append([]string{"backup", "--name", "vs1", "--transport", "direct"}, v.source()...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "transport direct is not configured here") {
		t.Errorf("direct without a path: %+v", r)
	}
	r = v.run(append([]string{"backup", "--name", "vs1", "--datastore-path", "LocalDS_0=relative"}, v.source()...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "absolute") {
		t.Errorf("relative --datastore-path: %+v", r)
	}
	if n := v.snapshots(); n != 0 {
		t.Errorf("%d snapshots left", n)
	}
}
