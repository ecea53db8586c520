package main

import (
	"context"
	"encoding/pem"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// esxiEnv is a repository holding a point of a vSphere VM (its recorded
// configuration: 2 CPUs, 3 GiB, two disks), a simulator whose host
// mounts NFS datastores (vcsim.NAS) and the flags that reach it.
type esxiEnv struct {
	*env
	sim                *vcsim.Sim
	nas                *vcsim.NAS
	nfsPort, mountPort int
	flags              []string
}

func newESXiEnv(t *testing.T) *esxiEnv {
	t.Helper()
	e := newEnv(t)
	e.vars = append(e.vars, "HOLDFAST_STATE_DIR="+filepath.Join(e.dir, "state"), "HOLDFAST_VSPHERE_PASSWORD="+vcsim.Password)
	e.init("--chunk-size", "256KiB")
	r, err := repo.Open(context.Background(), storage.NewLocal(e.repo), []byte("correct horse"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &repo.VMConfig{Platform: "vsphere", Name: "db-01", GuestID: "rhel8_64Guest", Version: "vmx-17", CPUs: 2,
		MemoryMiB: 3072, Firmware: "bios", NICs: []repo.VMNIC{{Model: "vmxnet3", Network: "VM Network"}},
		Disks: []repo.VMDisk{{Index: 0, Controller: "pvscsi", Unit: 0, CapacityBytes: 1 << 20},
			{Index: 1, Controller: "pvscsi", Unit: 1, CapacityBytes: 512 << 10}}}
	rng := rand.New(rand.NewPCG(3, 4))
	var disks [][]byte
	for _, d := range cfg.Disks {
		b := make([]byte, d.CapacityBytes)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		disks = append(disks, b)
	}
	testrepo.CommitPoint(t, r, &repo.Manifest{VM: "db-01", Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Config: cfg}, disks)
	r.Close()

	x := &esxiEnv{env: e, sim: vcsim.Start(t, nil)}
	_, mp, _ := net.SplitHostPort(freeAddr(t))
	_, np, _ := net.SplitHostPort(freeAddr(t))
	x.mountPort, _ = strconv.Atoi(mp)
	x.nfsPort, _ = strconv.Atoi(np)
	mount, unmount, kernel := vcsim.KernelMount(x.nfsPort, x.mountPort)
	if !kernel {
		var ok bool
		if mount, unmount, ok = vcsim.CopyMount(x.nfsPort, x.mountPort); !ok {
			t.Skip("neither a kernel NFS client nor libnfs's nfs-ls/nfs-cp")
		}
	}
	x.nas = &vcsim.NAS{Mount: mount, Unmount: unmount}
	x.sim.ExtendNAS(t, x.nas)
	ca := filepath.Join(e.dir, "vcsim-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.sim.Server.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	x.flags = []string{"--vsphere-ca", ca}
	return x
}

func (x *esxiEnv) start(t *testing.T, args ...string) instant.Record {
	t.Helper()
	args = append([]string{"latest", "--nbd", "", "--nfs-ports", "0," + strconv.Itoa(x.mountPort) + "," + strconv.Itoa(x.nfsPort),
		"--vsphere", x.sim.URL("/DC0/host/DC0_C0/DC0_C0_H0")}, append(args, x.flags...)...)
	rec := startInstant(t, x.env, args...)
	if rec.ESXi == nil || rec.ESXi.VMRef == "" {
		t.Fatalf("no VM on ESXi in %+v", rec)
	}
	return rec
}

func (x *esxiEnv) vm(t *testing.T, ref string) (mo.VirtualMachine, bool) {
	t.Helper()
	c := x.sim.Connect(t)
	var m mo.VirtualMachine
	vm := object.NewVirtualMachine(c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: ref})
	err := vm.Properties(context.Background(), vm.Reference(), []string{"name", "config", "runtime", "datastore", "parent"}, &m)
	if err != nil {
		return m, false
	}
	return m, m.Parent != nil // unregistered VMs have left their folder
}

func (x *esxiEnv) datastore(t *testing.T, name string) bool {
	t.Helper()
	c := x.sim.Connect(t)
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(context.Background(), "DC0")
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	_, err = f.Datastore(context.Background(), name)
	return err == nil
}

// waitGone waits (at most a minute) until a process has ended.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); instant.Alive(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInstantRecoveryESXi: start --vsphere mounts the session's export as
// an NFS datastore on the host, registers the VM from its .vmx with the
// recorded CPUs, memory and disks and powers it on; stop powers it off,
// unregisters it, removes the datastore and ends the serving process,
// leaving no mount and no scratch area.
func TestInstantRecoveryESXi(t *testing.T) {
	x := newESXiEnv(t)
	began := time.Now()
	rec := x.start(t, "--power-on", "--name", "db-01-restored", "--datastore-name", "ir-nfs")
	t.Logf("start --vsphere --power-on: serving, datastore mounted, VM registered and on in %s", time.Since(began).Round(time.Millisecond))
	er := rec.ESXi
	if er.Datastore != "ir-nfs" || er.VMName != "db-01-restored" || er.VMPath != "[ir-nfs] db-01-restored/db-01-restored.vmx" ||
		er.RemoteHost != "127.0.0.1" {
		t.Errorf("recorded %+v", er)
	}
	if c := x.nas.Created(); len(c) != 1 || c[0].RemotePath != "/holdfast/"+rec.ID || c[0].RemoteHost != "127.0.0.1" ||
		c[0].Type != "NFS" || c[0].AccessMode != "readWrite" {
		t.Errorf("CreateNasDatastore %+v", c)
	}
	vm, ok := x.vm(t, er.VMRef)
	if !ok || vm.Config.Hardware.NumCPU != 2 || vm.Config.Hardware.MemoryMB != 3072 ||
		vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Fatalf("VM: registered %v, %+v", ok, vm.Runtime.PowerState)
	}
	var sizes []int64
	for _, d := range vm.Config.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok {
			sizes = append(sizes, disk.CapacityInBytes)
		}
	}
	if len(sizes) != 2 || sizes[0] != 1<<20 || sizes[1] != 512<<10 {
		t.Errorf("disks %v", sizes)
	}
	// an NFS client (libnfs, as the host would) creates a lock file in the
	// VM folder: it lands in the scratch area, not in the redo data
	lck := filepath.Join(x.dir, "lck")
	if err := os.WriteFile(lck, []byte("esx01 heartbeat"), 0o600); err != nil {
		t.Fatal(err)
	}
	sh(t, "nfs-cp", lck, "nfs://127.0.0.1/holdfast/"+rec.ID+"/db-01-restored/.lck-0000000000000001?nfsport="+
		strconv.Itoa(x.nfsPort)+"&mountport="+strconv.Itoa(x.mountPort))
	if b, err := os.ReadFile(filepath.Join(rec.RedoDir, instant.ScratchDir, "db-01-restored", ".lck-0000000000000001")); err != nil ||
		string(b) != "esx01 heartbeat" {
		t.Errorf("the client's file in the scratch area: %q %v", b, err)
	}
	out := x.ok("instant-recovery", "show", rec.ID)
	if !strings.Contains(out, "ESXi: VM db-01-restored ("+er.VMRef+") registered from [ir-nfs] db-01-restored/db-01-restored.vmx") {
		t.Errorf("show:\n%s", out)
	}

	x.ok(append([]string{"instant-recovery", "stop", rec.ID}, x.flags...)...)
	waitGone(t, rec.PID)
	if _, registered := x.vm(t, er.VMRef); registered || x.datastore(t, "ir-nfs") || len(x.nas.Mounted()) != 0 {
		t.Errorf("after stop: VM registered %v, datastore %v, mounts %v", registered, x.datastore(t, "ir-nfs"), x.nas.Mounted())
	}
	if _, err := os.Stat(filepath.Join(rec.RedoDir, instant.ScratchDir)); !os.IsNotExist(err) {
		t.Errorf("the scratch area stayed: %v", err)
	}
}

// TestInstantRecoveryESXiLostSession: the serving process is killed; stop
// still unregisters the VM and removes the datastore.
func TestInstantRecoveryESXiLostSession(t *testing.T) {
	x := newESXiEnv(t)
	rec := x.start(t)
	if err := syscall.Kill(rec.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, rec.PID)
	if r := x.run("instant-recovery", "stop", rec.ID); r.code == 0 || !strings.Contains(r.stderr, "HOLDFAST_VSPHERE_PASSWORD") &&
		!strings.Contains(r.stderr, "certificate") {
		t.Errorf("stop without trust settings: exit %d: %s", r.code, r.stderr)
	}
	x.ok(append([]string{"instant-recovery", "stop", rec.ID, "--discard"}, x.flags...)...)
	if _, registered := x.vm(t, rec.ESXi.VMRef); registered || x.datastore(t, rec.ESXi.Datastore) || len(x.nas.Mounted()) != 0 {
		t.Errorf("after stop of a lost session: VM registered %v, datastore there %v", registered, x.datastore(t, rec.ESXi.Datastore))
	}
}

// TestInstantRecoveryESXiMigrate: migrate --vsphere-datastore relocates the
// VM to LocalDS_0; it stays registered, the NFS datastore goes and the
// session ends.
func TestInstantRecoveryESXiMigrate(t *testing.T) {
	x := newESXiEnv(t)
	rec := x.start(t, "--power-on")
	if r := x.run("instant-recovery", "migrate", rec.ID, "--to", filepath.Join(x.dir, "x.img")); r.code != exitUsage ||
		!strings.Contains(r.stderr, "runs on ESXi") {
		t.Errorf("an offline migration of an ESXi session: exit %d: %s", r.code, r.stderr)
	}
	out := x.ok(append([]string{"instant-recovery", "migrate", rec.ID, "--vsphere-datastore", "LocalDS_0"}, x.flags...)...)
	if !strings.Contains(out, "relocated to datastore LocalDS_0") {
		t.Errorf("migrate: %s", out)
	}
	waitGone(t, rec.PID)
	vm, registered := x.vm(t, rec.ESXi.VMRef)
	if !registered || vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || x.datastore(t, rec.ESXi.Datastore) {
		t.Errorf("after migrate: registered %v, %s, NFS datastore there %v", registered, vm.Runtime.PowerState, x.datastore(t, rec.ESXi.Datastore))
	}
	if r := x.run("instant-recovery", "show", rec.ID); r.code == 0 {
		t.Errorf("the session is still recorded:\n%s", r.stdout)
	}
}

// TestInstantRecoveryESXiFlags: bad --vsphere uses are refused before
// anything starts.
func TestInstantRecoveryESXiFlags(t *testing.T) {
	x := newESXiEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--vsphere", x.sim.URL("/DC0/vm/x")}, "want vsphere://USER@HOST/DC/host/"},
		{[]string{"--vsphere", "vsphere://u:pw@h/DC0/host/x"}, "a password does not go in the URL"},
		{[]string{"--vsphere", x.sim.URL("/DC0/host/DC0_H0"), "--nfs-bind", "0.0.0.0"}, "give --nfs-host"},
	} {
		r := x.run(append([]string{"instant-recovery", "start", "latest", "--nbd", ""}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d: %s", tc.args, r.code, r.stderr)
		}
	}
	// a host that is not there: the session that started is stopped and discarded
	r := x.run(append([]string{"instant-recovery", "start", "latest", "--nbd", "", "--nfs-ports", "0,0,0", "--vsphere",
		x.sim.URL("/DC0/host/nope")}, x.flags...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "stopped and discarded") || !strings.Contains(r.stderr, "nothing there") {
		t.Errorf("a missing host: exit %d: %s", r.code, r.stderr)
	}
	if out := x.ok("instant-recovery", "list", "--json"); out != "[]\n" {
		t.Errorf("sessions left: %s", out)
	}
	// a wrong password: nothing stays behind
	x.vars = append(x.vars, "HOLDFAST_VSPHERE_PASSWORD=wrong")
	r = x.run(append([]string{"instant-recovery", "start", "latest", "--nbd", "", "--nfs-ports", "0,0,0", "--vsphere",
		x.sim.URL("/DC0/host/DC0_H0")}, x.flags...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "incorrect user name or password") || strings.Contains(r.stderr, "wrong") {
		t.Errorf("wrong password: exit %d: %s", r.code, r.stderr)
	}
	if out := x.ok("instant-recovery", "list", "--json"); strings.Contains(out, `"state":"serving"`) {
		t.Errorf("a session serves on after a failed start: %s", out)
	}
}
