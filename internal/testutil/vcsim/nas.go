package vcsim

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/source/file"
	"github.com/holdfast-backup/holdfast/internal/vmx"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// NAS makes the simulator's NFS datastores and VM registration behave as
// an ESXi host's (ExtendNAS): CreateNasDatastore records its spec and
// mounts the NFS export at a directory named after the datastore, which
// becomes the datastore's local directory (the simulator's own uses
// spec.LocalPath as a directory); RemoveDatastore — which the simulator
// lacks — refuses while a registered VM has files there, else removes
// the datastore and unmounts it; RegisterVM_Task reads the .vmx from the
// datastore as ESXi does, creates the .nvram and vmware.log ESXi would
// create, registers the VM and gives it the .vmx's CPUs, memory, firmware,
// controllers, disks (capacity read through the descriptor and its flat
// extent) and NICs.
type NAS struct {
	// Mount makes spec's export visible at dir (an empty directory);
	// Unmount undoes it. KernelMount and CopyMount are two.
	Mount   func(spec types.HostNasVolumeSpec, dir string) error
	Unmount func(dir string) error

	root    string
	mu      sync.Mutex
	created []types.HostNasVolumeSpec
	removed []string
	mounted map[string]string // datastore name → directory
}

// Created returns the specs CreateNasDatastore received, LocalPath as the
// client sent it (the datastore's name).
func (n *NAS) Created() []types.HostNasVolumeSpec {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.created)
}

// Removed returns the names of the datastores RemoveDatastore removed.
func (n *NAS) Removed() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.removed)
}

// Mounted returns the datastores mounted now and their directories.
func (n *NAS) Mounted() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]string{}
	for k, v := range n.mounted {
		out[k] = v
	}
	return out
}

// ExtendNAS installs n on every host's datastore system and every
// datacenter's VM folder; what is still mounted when the test ends is
// unmounted.
func (s *Sim) ExtendNAS(t testing.TB, n *NAS) {
	t.Helper()
	n.root, n.mounted = t.TempDir(), map[string]string{}
	m := s.Model.Map()
	for _, e := range m.All("HostSystem") {
		h := e.(*simulator.HostSystem)
		if h.ConfigManager.DatastoreSystem == nil {
			continue
		}
		dss := m.Get(*h.ConfigManager.DatastoreSystem).(*simulator.HostDatastoreSystem)
		m.Put(&nasDatastoreSystem{HostDatastoreSystem: dss, nas: n})
	}
	for _, e := range m.All("Datacenter") {
		dc := e.(*simulator.Datacenter)
		f := m.Get(dc.VmFolder).(*simulator.Folder)
		m.Put(&nasFolder{Folder: f, nas: n})
	}
	t.Cleanup(func() {
		for _, dir := range n.Mounted() {
			if n.Unmount != nil {
				_ = n.Unmount(dir)
			}
		}
	})
}

type nasDatastoreSystem struct {
	*simulator.HostDatastoreSystem
	nas *NAS
}

func (d *nasDatastoreSystem) CreateNasDatastore(ctx *simulator.Context, req *types.CreateNasDatastore) soap.HasFault {
	n := d.nas
	name := req.Spec.LocalPath
	if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
		return &methods.CreateNasDatastoreBody{Fault_: simulator.Fault("bad datastore name", &types.InvalidArgument{InvalidProperty: "LocalPath"})}
	}
	dir := filepath.Join(n.root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return &methods.CreateNasDatastoreBody{Fault_: simulator.Fault(err.Error(), &types.DuplicateName{Name: name})}
	}
	if err := n.Mount(req.Spec, dir); err != nil {
		_ = os.Remove(dir)
		return &methods.CreateNasDatastoreBody{Fault_: simulator.Fault("NFS mount "+req.Spec.RemoteHost+":"+req.Spec.RemotePath+
			" failed: "+err.Error(), &types.PlatformConfigFault{Text: err.Error()})}
	}
	n.mu.Lock()
	n.created = append(n.created, req.Spec)
	n.mounted[name] = dir
	n.mu.Unlock()
	local := *req
	local.Spec.LocalPath = dir
	return d.HostDatastoreSystem.CreateNasDatastore(ctx, &local)
}

func (d *nasDatastoreSystem) RemoveDatastore(ctx *simulator.Context, req *types.RemoveDatastore) soap.HasFault {
	body := &methods.RemoveDatastoreBody{}
	ds, ok := ctx.Map.Get(req.Datastore).(*simulator.Datastore)
	if !ok {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: req.Datastore})
		return body
	}
	for _, e := range ctx.Map.All("HostSystem") { // registered VMs
		for _, ref := range e.(*simulator.HostSystem).Vm {
			if vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine); ok && slices.Contains(vm.Datastore, ds.Self) {
				body.Fault_ = simulator.Fault("", &types.ResourceInUse{Type: "Datastore", Name: ds.Name})
				return body
			}
		}
	}
	ds.Vm = nil // the simulator's relocation leaves the moved VM listed
	res := ds.DestroyTask(ctx, &types.Destroy_Task{This: ds.Self}).(*methods.Destroy_TaskBody).Res
	task := ctx.Map.Get(res.Returnval).(*simulator.Task)
	task.Wait()
	if task.Info.Error != nil {
		body.Fault_ = simulator.Fault("", task.Info.Error.Fault)
		return body
	}
	d.Datastore = slices.DeleteFunc(d.Datastore, func(r types.ManagedObjectReference) bool { return r == ds.Self })
	d.Host.Datastore = d.Datastore
	ctx.Map.Remove(ctx, ds.Self)
	n := d.nas
	n.mu.Lock()
	dir := n.mounted[ds.Name]
	delete(n.mounted, ds.Name)
	n.removed = append(n.removed, ds.Name)
	n.mu.Unlock()
	if dir != "" && n.Unmount != nil {
		if err := n.Unmount(dir); err != nil {
			body.Fault_ = simulator.Fault("unmount: "+err.Error(), &types.PlatformConfigFault{Text: err.Error()})
			return body
		}
	}
	body.Res = &types.RemoveDatastoreResponse{}
	return body
}

type nasFolder struct {
	*simulator.Folder
	nas *NAS
}

func (f *nasFolder) RegisterVMTask(ctx *simulator.Context, req *types.RegisterVM_Task) soap.HasFault {
	task := simulator.CreateTask(f.Folder, "registerVm", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		spec, fault := readVMX(ctx, f.Folder, req)
		if fault != nil {
			return nil, fault
		}
		res := f.Folder.RegisterVMTask(ctx, req).(*methods.RegisterVM_TaskBody).Res
		inner := ctx.Map.Get(res.Returnval).(*simulator.Task)
		inner.Wait()
		if inner.Info.Error != nil {
			return nil, inner.Info.Error.Fault
		}
		ref := inner.Info.Result.(types.ManagedObjectReference)
		vm := ctx.Map.Get(ref).(*simulator.VirtualMachine)
		rres := vm.ReconfigVMTask(ctx, &types.ReconfigVM_Task{This: ref, Spec: spec}).(*methods.ReconfigVM_TaskBody).Res
		rt := ctx.Map.Get(rres.Returnval).(*simulator.Task)
		rt.Wait()
		if rt.Info.Error != nil {
			return nil, rt.Info.Error.Fault
		}
		return ref, nil
	})
	return &methods.RegisterVM_TaskBody{Res: &types.RegisterVM_TaskResponse{Returnval: task.Run(ctx)}}
}

// readVMX reads the .vmx of a registration from its datastore's local
// directory, creates the files ESXi creates for it, and returns the
// configuration it describes.
func readVMX(ctx *simulator.Context, f *simulator.Folder, req *types.RegisterVM_Task) (types.VirtualMachineConfigSpec, types.BaseMethodFault) {
	var spec types.VirtualMachineConfigSpec
	var p object.DatastorePath
	if !p.FromString(req.Path) {
		return spec, &types.InvalidArgument{InvalidProperty: "path"}
	}
	var dsDir string
	for _, e := range ctx.Map.All("Datastore") {
		if ds := e.(*simulator.Datastore); ds.Name == p.Datastore {
			dsDir = ds.Info.GetDatastoreInfo().Url
		}
	}
	if dsDir == "" {
		return spec, &types.NotFound{}
	}
	vmxPath := filepath.Join(dsDir, filepath.FromSlash(p.Path))
	b, err := os.ReadFile(vmxPath)
	if err != nil {
		return spec, &types.FileNotFound{FileFault: types.FileFault{File: req.Path}}
	}
	keys, err := vmx.Parse(b)
	if err != nil {
		return spec, &types.InvalidArgument{InvalidProperty: "vmx: " + err.Error()}
	}
	name := req.Name
	if name == "" {
		name = path.Dir(p.Path)
	}
	// ESXi creates these next to the .vmx; the simulator opens them
	for _, n := range []string{name + ".nvram", "vmware.log"} {
		fp := filepath.Join(filepath.Dir(vmxPath), n)
		if err := os.WriteFile(fp, nil, 0o644); err != nil {
			return spec, &types.CannotCreateFile{FileFault: types.FileFault{File: n}}
		}
	}
	return vmxSpec(keys, p.Datastore, path.Dir(p.Path), filepath.Dir(vmxPath))
}

// vmxSpec turns .vmx keys into the configuration the VM gets: file names
// are relative to the .vmx's folder (vmFolder in datastore ds, dir
// locally).
func vmxSpec(keys map[string]string, ds, vmFolder, dir string) (types.VirtualMachineConfigSpec, types.BaseMethodFault) {
	var spec types.VirtualMachineConfigSpec
	if _, err := fmt.Sscan(keys["numvcpus"], &spec.NumCPUs); err != nil {
		return spec, &types.InvalidArgument{InvalidProperty: "numvcpus"}
	}
	if _, err := fmt.Sscan(keys["memsize"], &spec.MemoryMB); err != nil {
		return spec, &types.InvalidArgument{InvalidProperty: "memsize"}
	}
	spec.Firmware = keys["firmware"]
	spec.Version = "vmx-" + keys["virtualhw.version"]
	ctrlKey := map[string]int32{}
	next := int32(-100)
	for _, prefix := range []string{"scsi", "sata", "nvme"} {
		for bus := range 4 {
			k := fmt.Sprintf("%s%d", prefix, bus)
			if keys[k+".present"] != "TRUE" {
				continue
			}
			next--
			ctrlKey[k] = next
			spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
				Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: controller(prefix, keys[k+".virtualdev"], next, int32(bus))})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) { // scsi0:0 before scsi0:1
		file := keys[k]
		dev, ok := strings.CutSuffix(k, ".filename")
		if !ok || keys[dev+".present"] != "TRUE" {
			continue
		}
		var prefix string
		var bus, unit int32
		i := strings.IndexAny(dev, "0123456789")
		if i < 0 {
			continue
		}
		prefix = dev[:i]
		if _, err := fmt.Sscanf(dev[i:], "%d:%d", &bus, &unit); err != nil {
			continue
		}
		key, ok := ctrlKey[fmt.Sprintf("%s%d", prefix, bus)]
		if prefix == "ide" {
			key, ok = 200+bus, true
		}
		if !ok {
			return spec, &types.InvalidArgument{InvalidProperty: k + ": no controller"}
		}
		capacity, err := vmdkCapacity(filepath.Join(dir, filepath.FromSlash(file)))
		if err != nil {
			return spec, &types.FileNotFound{FileFault: types.FileFault{File: file + ": " + err.Error()}}
		}
		next--
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd,
			Device: &types.VirtualDisk{CapacityInBytes: capacity, VirtualDevice: types.VirtualDevice{
				Key: next, ControllerKey: key, UnitNumber: types.NewInt32(unit),
				Backing: &types.VirtualDiskFlatVer2BackingInfo{DiskMode: string(types.VirtualDiskModePersistent),
					VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: fmt.Sprintf("[%s] %s", ds, path.Join(vmFolder, file))}}}}})
	}
	for i := 0; keys[fmt.Sprintf("ethernet%d.present", i)] == "TRUE"; i++ {
		p := fmt.Sprintf("ethernet%d.", i)
		next--
		nic := &types.VirtualVmxnet3{}
		nic.Key = next
		nic.AddressType = keys[p+"addresstype"]
		nic.Backing = &types.VirtualEthernetCardNetworkBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{
			DeviceName: keys[p+"networkname"]}}
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: nic})
	}
	return spec, nil
}

func controller(prefix, dev string, key, bus int32) types.BaseVirtualDevice {
	vc := types.VirtualController{BusNumber: bus, VirtualDevice: types.VirtualDevice{Key: key}}
	scsi := types.VirtualSCSIController{VirtualController: vc, SharedBus: types.VirtualSCSISharingNoSharing}
	switch {
	case prefix == "sata":
		return &types.VirtualAHCIController{VirtualSATAController: types.VirtualSATAController{VirtualController: vc}}
	case prefix == "nvme":
		return &types.VirtualNVMEController{VirtualController: vc}
	case dev == "pvscsi":
		return &types.ParaVirtualSCSIController{VirtualSCSIController: scsi}
	case dev == "lsisas1068":
		return &types.VirtualLsiLogicSASController{VirtualSCSIController: scsi}
	case dev == "buslogic":
		return &types.VirtualBusLogicController{VirtualSCSIController: scsi}
	}
	return &types.VirtualLsiLogicController{VirtualSCSIController: scsi}
}

// vmdkCapacity opens a VMDK descriptor and its extent as Holdfast's reader
// does and returns the disk's capacity.
func vmdkCapacity(descriptor string) (int64, error) {
	d, err := file.Open(context.Background(), descriptor, file.Options{Format: file.FormatVMDK})
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return d.Size(), nil
}

// KernelMount mounts the export with the kernel's NFS v3 client (mount -t
// nfs -o vers=3,port=…,mountport=…,nolock) and Unmount unmounts it. ok is
// false when the test cannot: not root, or no NFS client in the kernel or
// no mount.nfs.
func KernelMount(nfsPort, mountPort int) (mount func(types.HostNasVolumeSpec, string) error, unmount func(string) error, ok bool) {
	if os.Geteuid() != 0 {
		return nil, nil, false
	}
	fs, err := os.ReadFile("/proc/filesystems") // no modprobe: the kernel is shared
	if err != nil || !strings.Contains(string(fs), "\tnfs\n") {
		return nil, nil, false
	}
	if _, err := exec.LookPath("mount.nfs"); err != nil {
		return nil, nil, false
	}
	mount = func(spec types.HostNasVolumeSpec, dir string) error {
		opts := fmt.Sprintf("vers=3,tcp,nolock,port=%d,mountport=%d,mountproto=tcp,soft,timeo=50,retrans=2", nfsPort, mountPort)
		return run("mount", "-t", "nfs", "-o", opts, spec.RemoteHost+":"+spec.RemotePath, dir)
	}
	unmount = func(dir string) error { return run("umount", dir) }
	return mount, unmount, true
}

// CopyMount stands in for a mount where the kernel cannot mount NFS: it
// copies every file of the export and of its directories into dir with
// libnfs's nfs-cp (a real
// NFS client, through the export's MOUNT and NFS services at the given
// ports). Files the host creates stay in dir. ok is false without nfs-ls
// and nfs-cp.
func CopyMount(nfsPort, mountPort int) (mount func(types.HostNasVolumeSpec, string) error, unmount func(string) error, ok bool) {
	for _, b := range []string{"nfs-ls", "nfs-cp"} {
		if _, err := exec.LookPath(b); err != nil {
			return nil, nil, false
		}
	}
	url := func(spec types.HostNasVolumeSpec, name string) string {
		return fmt.Sprintf("nfs://%s%s?nfsport=%d&mountport=%d", spec.RemoteHost, path.Join(spec.RemotePath, name), nfsPort, mountPort)
	}
	var copyDir func(spec types.HostNasVolumeSpec, sub, dir string) error
	copyDir = func(spec types.HostNasVolumeSpec, sub, dir string) error {
		out, err := output("nfs-ls", url(spec, sub))
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			name := f[len(f)-1]
			switch {
			case strings.HasPrefix(f[0], "-"):
				err = run("nfs-cp", url(spec, path.Join(sub, name)), filepath.Join(dir, sub, name))
			case strings.HasPrefix(f[0], "d") && sub == "" && name != "." && name != "..":
				if err = os.Mkdir(filepath.Join(dir, name), 0o755); err == nil {
					err = copyDir(spec, name, dir)
				}
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	mount = func(spec types.HostNasVolumeSpec, dir string) error { return copyDir(spec, "", dir) }
	unmount = func(dir string) error { return os.RemoveAll(dir) }
	return mount, unmount, true
}

func run(name string, args ...string) error {
	_, err := output(name, args...)
	return err
}

func output(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
