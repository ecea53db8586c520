package vsphererestore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source/file"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// testConfig is a VM with two disks on two controllers and two NICs.
func testConfig() *repo.VMConfig {
	return &repo.VMConfig{
		Platform: "vsphere", Name: "web1", UUID: "5012aaaa-bbbb-cccc-dddd-eeeeffff0000",
		GuestID: "otherLinux64Guest", Version: "vmx-19", CPUs: 3, MemoryMiB: 1536, Firmware: "efi",
		Disks: []repo.VMDisk{
			{Index: 0, Controller: "pvscsi", Bus: 0, Unit: 0, CapacityBytes: 2 << 20, Thin: true, Mode: "persistent", Datastore: "LocalDS_0"},
			{Index: 1, Controller: "lsilogic 1", Bus: 1, Unit: 2, CapacityBytes: 1 << 20, Mode: "persistent", Datastore: "LocalDS_0"},
		},
		NICs: []repo.VMNIC{
			{Model: "vmxnet3", Network: "VM Network", MAC: "00:50:56:aa:bb:01"},
			{Model: "e1000e", Network: "Old PG", MAC: "00:50:56:aa:bb:02"},
		},
	}
}

// vmState is what a test checks of a restored VM.
type vmState struct {
	mo   mo.VirtualMachine
	devs object.VirtualDeviceList
}

func readVM(t *testing.T, c *vsphere.Client, ref string) vmState {
	t.Helper()
	var m mo.VirtualMachine
	r := types.ManagedObjectReference{Type: "VirtualMachine", Value: ref}
	if err := object.NewVirtualMachine(c.Client, r).Properties(context.Background(), r, []string{"config", "runtime", "network"}, &m); err != nil {
		t.Fatal(err)
	}
	return vmState{mo: m, devs: object.VirtualDeviceList(m.Config.Hardware.Device)}
}

// TestRestoreCreatesTheRecordedVM: the new VM has the recorded hardware,
// its disks sit at the recorded controller and unit, its NICs on the
// mapped networks with new MACs, and the disk files on the datastore
// equal the point byte for byte.
func TestRestoreCreatesTheRecordedVM(t *testing.T) {
	sim := vcsim.Start(t, nil)
	c := sim.Connect(t)
	cfg := testConfig()
	data := [][]byte{diskData(2<<20, 1), diskData(1<<20, 2)}
	_, _, disks := point(t, cfg, data...)
	var progress int64
	res, err := Restore(context.Background(), Request{Client: c, Datacenter: "DC0", Config: cfg, Disks: asDisks(disks),
		Name: "web1-restored", Networks: map[string]string{"Old PG": "DC0_DVPG0"}, Progress: func(n int64) { progress += n }})
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesUploaded != 3<<20 || progress != 3<<20 || res.Replaced || res.MACsKept || res.PoweredOn {
		t.Errorf("result %+v, progress %d", res, progress)
	}
	vm := readVM(t, c, res.MoRef)
	hw := vm.mo.Config.Hardware
	if vm.mo.Config.Name != "web1-restored" || hw.NumCPU != 3 || hw.MemoryMB != 1536 || vm.mo.Config.Firmware != "efi" ||
		vm.mo.Config.GuestId != "otherLinux64Guest" || vm.mo.Config.Version != "vmx-19" {
		t.Errorf("config: name %s cpus %d memory %d firmware %s guest %s version %s", vm.mo.Config.Name, hw.NumCPU, hw.MemoryMB,
			vm.mo.Config.Firmware, vm.mo.Config.GuestId, vm.mo.Config.Version)
	}
	ds, err := finder(t, sim).Datastore(context.Background(), "LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	root := dsDir(t, ds)
	for i, d := range cfg.Disks {
		ctl, _ := diskController(d)
		disk := diskAt(vm.devs, ctl, d.Unit)
		if disk == nil {
			t.Fatalf("disk %d: none at %s unit %d", i, ctl, d.Unit)
		}
		if disk.CapacityInBytes != int64(len(data[i])) {
			t.Errorf("disk %d: capacity %d", i, disk.CapacityInBytes)
		}
		b := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if thin := b.ThinProvisioned != nil && *b.ThinProvisioned; thin != d.Thin {
			t.Errorf("disk %d: thin %v", i, thin)
		}
		p, err := vsphere.ParseDatastorePath(b.FileName)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := os.ReadFile(filepath.Join(root, p.Path))
		if err != nil {
			t.Fatal(err)
		}
		flat, err := parseFlatDescriptor(desc, int64(len(data[i])))
		if err != nil {
			t.Fatalf("disk %d: descriptor %s: %v", i, desc, err)
		}
		got, err := os.ReadFile(filepath.Join(root, p.Dir(), flat))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[i]) {
			t.Errorf("disk %d: %s differs from the point", i, flat)
		}
	}
	checkNICs(t, c, vm, cfg, []string{"VM Network", "DC0_DVPG0"}, false)
}

// checkNICs checks the NICs' models, networks and MAC addresses.
func checkNICs(t *testing.T, c *vsphere.Client, vm vmState, cfg *repo.VMConfig, nets []string, sameMACs bool) {
	t.Helper()
	cards := vm.devs.SelectByType((*types.VirtualEthernetCard)(nil))
	if len(cards) != len(cfg.NICs) {
		t.Fatalf("%d NICs, want %d", len(cards), len(cfg.NICs))
	}
	for i, d := range cards {
		card := d.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		if got := cardNetwork(t, c, card); got != nets[i] {
			t.Errorf("NIC %d: on network %q, want %q", i, got, nets[i])
		}
		model := strings.ToLower(strings.TrimPrefix(vm.devs.TypeName(d), "Virtual"))
		if model != cfg.NICs[i].Model {
			t.Errorf("NIC %d: model %s, want %s", i, model, cfg.NICs[i].Model)
		}
		if (card.MacAddress == cfg.NICs[i].MAC) != sameMACs {
			t.Errorf("NIC %d: MAC %s (recorded %s), want the same: %v", i, card.MacAddress, cfg.NICs[i].MAC, sameMACs)
		}
	}
}

// TestRestoreExistingName: a VM of the same name is refused without
// Force; with it the original (same instance UUID) is powered off and
// destroyed, its MACs kept, and the new VM powered on when asked.
func TestRestoreExistingName(t *testing.T) {
	sim := vcsim.Start(t, nil)
	c := sim.Connect(t)
	ctx := context.Background()
	f := finder(t, sim)
	orig, err := f.VirtualMachine(ctx, "DC0_H0_VM0")
	if err != nil {
		t.Fatal(err)
	}
	var om mo.VirtualMachine
	if err := orig.Properties(ctx, orig.Reference(), []string{"config.instanceUuid", "runtime.powerState"}, &om); err != nil {
		t.Fatal(err)
	}
	if om.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Fatalf("the simulator's VM is %s", om.Runtime.PowerState)
	}
	cfg := testConfig()
	cfg.Name, cfg.UUID = "DC0_H0_VM0", om.Config.InstanceUuid
	cfg.NICs[1].Network = "DC0_DVPG0"
	_, _, disks := point(t, cfg, diskData(2<<20, 3), diskData(1<<20, 4))
	req := Request{Client: c, Datacenter: "DC0", Config: cfg, Disks: asDisks(disks)}
	if _, err := Restore(ctx, req); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over an existing VM without force: %v", err)
	}
	if _, err := orig.PowerState(ctx); err != nil {
		t.Fatalf("the refused restore touched the VM: %v", err)
	}
	req.Force, req.PowerOn = true, true
	res, err := Restore(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replaced || !res.MACsKept || !res.PoweredOn || res.MoRef == orig.Reference().Value {
		t.Errorf("result %+v", res)
	}
	if _, err := orig.PowerState(ctx); err == nil {
		t.Error("the original VM still exists")
	}
	vm := readVM(t, c, res.MoRef)
	if vm.mo.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("restored VM is %s", vm.mo.Runtime.PowerState)
	}
	checkNICs(t, c, vm, cfg, []string{"VM Network", "DC0_DVPG0"}, true)
}

// TestRestoreSeveralOfTheName: --force replaces one VM, never several
// that share the name (in different folders).
func TestRestoreSeveralOfTheName(t *testing.T) {
	sim := vcsim.Start(t, nil)
	c := sim.Connect(t)
	ctx := context.Background()
	f := finder(t, sim)
	root, err := f.Folder(ctx, "/DC0/vm")
	if err != nil {
		t.Fatal(err)
	}
	other, err := root.CreateFolder(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := f.ResourcePool(ctx, "/DC0/host/DC0_H0/Resources")
	if err != nil {
		t.Fatal(err)
	}
	for _, folder := range []*object.Folder{root, other} {
		task, err := folder.CreateVM(ctx, types.VirtualMachineConfigSpec{Name: "twin", GuestId: "otherGuest64",
			Files: &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"}}, pool, nil)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig()
	cfg.NICs = nil
	_, _, disks := point(t, cfg, diskData(2<<20, 13), diskData(1<<20, 14))
	_, err = Restore(ctx, Request{Client: c, Datacenter: "DC0", Config: cfg, Disks: asDisks(disks), Name: "twin", Force: true})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "2 VMs are named") {
		t.Fatalf("error %v", err)
	}
	if vms, err := vmsNamed(ctx, c, root, "twin"); err != nil || len(vms) != 2 {
		t.Errorf("%d VMs named twin left (%v), want both", len(vms), err)
	}
}

// TestRestoreRefusals: what is wrong is said before anything is created.
func TestRestoreRefusals(t *testing.T) {
	sim := vcsim.Start(t, nil)
	c := sim.Connect(t)
	cfg := testConfig()
	_, _, disks := point(t, cfg, diskData(2<<20, 5), diskData(1<<20, 6))
	tests := []struct {
		name string
		mod  func(*Request)
		want string
	}{
		{"no config", func(r *Request) { r.Config = nil }, "records no VM configuration"},
		{"unknown network", func(r *Request) {}, `network "Old PG"`},
		{"unknown datastore", func(r *Request) { r.Datastore = "nope" }, `datastore "nope"`},
		{"bad name", func(r *Request) { r.Name = "a/b" }, "VM name"},
		{"host and cluster", func(r *Request) { r.Host, r.Cluster = "DC0_H0", "DC0_C0" }, "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{Client: c, Datacenter: "DC0", Config: cfg, Disks: asDisks(disks), Name: "refused"}
			tc.mod(&req)
			_, err := Restore(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if vms, _ := finder(t, sim).VirtualMachineList(context.Background(), "refused"); len(vms) != 0 {
				t.Error("a VM was created")
			}
		})
	}
}

// cardNetwork names the network a NIC's backing connects to.
func cardNetwork(t *testing.T, c *vsphere.Client, card *types.VirtualEthernetCard) string {
	t.Helper()
	var ref types.ManagedObjectReference
	switch b := card.Backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		return b.DeviceName
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		ref = types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}
	default:
		t.Fatalf("NIC backing %T", card.Backing)
	}
	var n mo.Network
	if err := object.NewCommon(c.Client, ref).Properties(context.Background(), ref, []string{"name"}, &n); err != nil {
		t.Fatal(err)
	}
	return n.Name
}

// convertingVDM extends the simulator's VirtualDiskManager (whose copy
// only copies descriptor-and-flat pairs) with what CopyVirtualDisk_Task
// does on ESXi for a hosted sparse source: it writes the disk as a
// descriptor and a flat extent. It reads the source with Holdfast's VMDK
// reader and records the specs it was asked for.
type convertingVDM struct {
	*simulator.VirtualDiskManager
	root  string // LocalDS_0's directory
	mu    sync.Mutex
	specs []types.FileBackedVirtualDiskSpec
}

func (m *convertingVDM) CopyVirtualDiskTask(ctx *simulator.Context, req *types.CopyVirtualDisk_Task) soap.HasFault {
	task := simulator.CreateTask(m, "copyVirtualDisk", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		src, err1 := vsphere.ParseDatastorePath(req.SourceName)
		dst, err2 := vsphere.ParseDatastorePath(req.DestName)
		spec, ok := req.DestSpec.(*types.FileBackedVirtualDiskSpec)
		if err1 != nil || err2 != nil || !ok {
			return nil, &types.InvalidArgument{}
		}
		m.mu.Lock()
		m.specs = append(m.specs, *spec)
		m.mu.Unlock()
		d, err := file.Open(context.Background(), filepath.Join(m.root, src.Path), file.Options{Format: file.FormatVMDK})
		if err != nil {
			return nil, &types.FileFault{File: req.SourceName}
		}
		defer d.Close()
		flat := strings.TrimSuffix(filepath.Base(dst.Path), ".vmdk") + "-flat.vmdk"
		out, err := os.Create(filepath.Join(m.root, dst.Dir(), flat))
		if err != nil {
			return nil, &types.CannotCreateFile{}
		}
		defer out.Close()
		desc, err := descriptor(d.Size(), flat, "pvscsi", true, "", false)
		if _, err2 := io.Copy(out, io.NewSectionReader(d, 0, d.Size())); err != nil || err2 != nil {
			return nil, &types.FileFault{File: req.DestName}
		}
		if err := os.WriteFile(filepath.Join(m.root, dst.Path), desc, 0o600); err != nil {
			return nil, &types.CannotCreateFile{}
		}
		return nil, nil
	})
	return &methods.CopyVirtualDisk_TaskBody{Res: &types.CopyVirtualDisk_TaskResponse{Returnval: task.Run(ctx)}}
}

// TestRestoreSparse: with Sparse each disk crosses the network as a
// monolithicSparse VMDK without its zero chunks, vSphere is asked to
// convert it into a thin disk at the place of the flat one, the upload is
// deleted, and the attached disk reads as the point.
func TestRestoreSparse(t *testing.T) {
	sim := vcsim.Start(t, nil)
	c := sim.Connect(t)
	ds, err := finder(t, sim).Datastore(context.Background(), "LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	root := dsDir(t, ds)
	vdm := &convertingVDM{VirtualDiskManager: sim.Model.Map().VirtualDiskManager().(*simulator.VirtualDiskManager), root: root}
	sim.Model.Map().Put(vdm)
	cfg := testConfig()
	cfg.NICs = nil
	data := [][]byte{diskData(2<<20, 10), make([]byte, 1<<20)}
	_, _, disks := point(t, cfg, data...)
	var progress int64
	res, err := Restore(context.Background(), Request{Client: c, Datacenter: "DC0", Config: cfg, Disks: asDisks(disks), Sparse: true,
		Progress: func(n int64) { progress += n }})
	if err != nil {
		t.Fatal(err)
	}
	// Disk 0: 8 chunks, 1 and 6–7 zero; disk 1 all zeros: 64 KiB headers.
	if want := int64(2*64<<10 + 5*cs); res.BytesUploaded != want || progress != 3<<20 {
		t.Errorf("uploaded %d bytes, want %d; progress %d", res.BytesUploaded, want, progress)
	}
	if len(vdm.specs) != 2 || vdm.specs[0].DiskType != string(types.VirtualDiskTypeThin) || vdm.specs[1].AdapterType != "lsiLogic" {
		t.Errorf("conversions asked for: %+v", vdm.specs)
	}
	vm := readVM(t, c, res.MoRef)
	for i, d := range cfg.Disks {
		ctl, _ := diskController(d)
		disk := diskAt(vm.devs, ctl, d.Unit)
		if disk == nil {
			t.Fatalf("disk %d missing", i)
		}
		b := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if res.Disks[i].Format != FormatSparse || b.ThinProvisioned == nil || !*b.ThinProvisioned {
			t.Errorf("disk %d: format %s, thin %v", i, res.Disks[i].Format, b.ThinProvisioned)
		}
		p, err := vsphere.ParseDatastorePath(b.FileName)
		if err != nil {
			t.Fatal(err)
		}
		readVMDK(t, filepath.Join(root, p.Path), data[i])
		sparse := filepath.Join(root, strings.TrimSuffix(p.Path, ".vmdk")+"-sparse.vmdk")
		if _, err := os.Stat(sparse); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the sparse upload %s was not deleted: %v", sparse, err)
		}
	}
}
