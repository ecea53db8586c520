package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/vsphererestore"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// vsphereRestoreFlags are restore's flags for a whole VM restored to
// vSphere (--to-vsphere) or rolled back in place (--rollback vsphere://).
type vsphereRestoreFlags struct {
	to             string
	name           string
	datastore      string
	host, cluster  string
	folder         string
	networks       []string
	powerOn        bool
	sparse         bool
	datastorePaths []string
	conn           vsphereFlags
}

func (f *vsphereRestoreFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.to, "to-vsphere", "", "restore the whole VM to vSphere: vsphere://USER@HOST/DATACENTER")
	fs.StringVar(&f.name, "name", "", "with --to-vsphere or --to-libvirt: the new VM's or domain's name (default: the recorded one)")
	fs.StringVar(&f.datastore, "datastore", "", "with --to-vsphere: datastore for the VM and its disks (default: the recorded one)")
	fs.StringVar(&f.host, "host", "", "with --to-vsphere: host to run the VM on (default: one that mounts the datastore)")
	fs.StringVar(&f.cluster, "cluster", "", "with --to-vsphere: cluster to run the VM in")
	fs.StringVar(&f.folder, "folder", "", "with --to-vsphere: inventory folder of the VM (default: the datacenter's VM folder)")
	fs.StringArrayVar(&f.networks, "network", nil, "with --to-vsphere: connect NICs of network OLD to NEW (OLD=NEW, repeatable); with --to-libvirt: keep or disconnect (links down)")
	fs.BoolVar(&f.powerOn, "power-on", false, "with --to-vsphere: power the VM on once restored")
	fs.BoolVar(&f.sparse, "sparse-upload", false, "with --to-vsphere: upload each disk without its zero chunks (a monolithicSparse VMDK that vSphere converts into a thin disk)")
	fs.StringArrayVar(&f.datastorePaths, "datastore-path", nil, "with --rollback vsphere://…: datastore NAME is mounted here at DIR (NAME=DIR, repeatable)")
	f.conn.register(fs)
}

// rollbackFlag is --rollback: alone (the disk at --to) or naming a
// vSphere VM (--rollback vsphere://USER@HOST/DC/vm/…/VM).
type rollbackFlag struct {
	on *bool
	vm *string
}

func (f rollbackFlag) String() string {
	if f.vm != nil && *f.vm != "" {
		return *f.vm
	}
	return fmt.Sprint(f.on != nil && *f.on)
}

func (f rollbackFlag) Set(s string) error {
	if isVSphereURL(s) {
		*f.on, *f.vm = true, s
		return nil
	}
	switch s {
	case "true":
		*f.on = true
	case "false":
		*f.on = false
	default:
		return fmt.Errorf("want a vsphere://USER@HOST/DC/vm/…/VM or nothing")
	}
	return nil
}

func (f rollbackFlag) Type() string { return "bool" }

func isVSphereURL(s string) bool { return strings.HasPrefix(strings.ToLower(s), "vsphere://") }

// pointArg returns POINT; with --rollback the VM may follow it as an
// argument of its own (--rollback vsphere://…/VM).
func (o *restoreOptions) pointArg(cmd *cobra.Command, args []string) (string, error) {
	switch {
	case len(args) == 1:
		return args[0], nil
	case len(args) == 2 && o.rollback && (o.rollbackVM == "" || o.rollbackVM == args[1]) && isVSphereURL(args[1]):
		o.rollbackVM = args[1]
		return args[0], nil
	case len(args) == 2 && o.rollback && (o.rollbackVM == "" || o.rollbackVM == args[0]) && isVSphereURL(args[0]):
		o.rollbackVM = args[0]
		return args[1], nil
	}
	return "", exactArgs(1)(cmd, args)
}

// vsphereRestore is whether the restore goes to vSphere.
func (o *restoreOptions) vsphereRestore() bool { return o.vs.to != "" || o.rollbackVM != "" }

// checkVSphere refuses flags that do not go with a vSphere restore or
// rollback.
func (o *restoreOptions) checkVSphere(cmd *cobra.Command) error {
	bad := func(names ...string) error {
		for _, n := range names {
			if cmd.Flags().Changed(n) {
				return usageError{fmt.Errorf("--%s does not go with %s", n, o.vsphereMode())}
			}
		}
		return nil
	}
	if err := bad("to", "to-format", "disk"); err != nil {
		return err
	}
	if o.vs.to != "" && o.rollbackVM != "" {
		return usageError{errors.New("give --to-vsphere (a new VM) or --rollback vsphere://… (the VM itself), not both")}
	}
	if o.rollbackVM != "" {
		if len(o.vs.datastorePaths) == 0 {
			return usageError{errors.New("--rollback into a vSphere VM writes its disks through direct datastore access: give --datastore-path NAME=DIR for the datastore(s) of its disks")}
		}
		return bad("name", "datastore", "host", "cluster", "folder", "network", "power-on", "sparse-upload")
	}
	if o.rollback {
		return usageError{errors.New("--rollback with --to-vsphere: roll back with --rollback vsphere://USER@HOST/DC/vm/…/VM")}
	}
	return bad("datastore-path")
}

func (o *restoreOptions) vsphereMode() string {
	if o.rollbackVM != "" {
		return "--rollback vsphere://…"
	}
	return "--to-vsphere"
}

// keyValues reads NAME=VALUE flags into a map.
func keyValues(flag string, specs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, s := range specs {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" || v == "" {
			return nil, usageError{fmt.Errorf("--%s %q: want NAME=VALUE", flag, s)}
		}
		if _, dup := m[k]; dup {
			return nil, usageError{fmt.Errorf("--%s: %s given twice", flag, k)}
		}
		m[k] = v
	}
	return m, nil
}

// vsphereTarget parses the vsphere:// URL: a datacenter for a restore, a
// VM for a rollback.
func (o *restoreOptions) vsphereTarget() (vsphere.Locator, error) {
	raw := o.vs.to + o.rollbackVM
	loc, err := vsphere.ParseURL(raw)
	if err != nil {
		return loc, usageError{err}
	}
	parts := strings.Split(strings.TrimPrefix(loc.Path, "/"), "/")
	switch {
	case o.vs.to != "" && (loc.Path == "" || len(parts) != 1):
		return loc, usageError{fmt.Errorf("--to-vsphere %s: want vsphere://USER@HOST/DATACENTER", loc)}
	case o.rollbackVM != "" && (len(parts) < 3 || parts[1] != "vm"):
		return loc, usageError{fmt.Errorf("--rollback %s: want vsphere://USER@HOST/DATACENTER/vm/…/VM", loc)}
	}
	return loc, nil
}

func runVSphereRestore(cmd *cobra.Command, a *app, o restoreOptions, ref string) error {
	if err := o.checkVSphere(cmd); err != nil {
		return err
	}
	loc, err := o.vsphereTarget()
	if err != nil {
		return err
	}
	networks, err := keyValues("network", o.vs.networks)
	if err != nil {
		return err
	}
	dsPaths, err := parseDatastorePaths(o.vs.datastorePaths)
	if err != nil {
		return err
	}
	co, err := o.vs.conn.connectOptions(a)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	r, m, err := a.openPoint(ctx, ref)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := a.scanBefore(ctx, r, o.scan, m); err != nil {
		return err
	}
	var disks []*restorefs.Disk
	defer func() {
		for _, d := range disks {
			d.Close()
		}
	}()
	var total int64
	for i := range m.Disks {
		d, err := restorefs.OpenDisk(ctx, r, m, i, restorefs.Options{CacheBytes: 64 << 20, ReadAhead: 8})
		if err != nil {
			return err
		}
		disks = append(disks, d)
		total += d.Size()
	}
	c, err := vsphere.Connect(ctx, loc, co)
	if err != nil {
		return err
	}
	defer c.Logout(ctx)
	if o.rollbackVM != "" {
		return runVSphereRollback(a, cmd, c, loc, m, disks, dsPaths, o, total)
	}
	in := make([]vsphererestore.Disk, len(disks))
	for i, d := range disks {
		in[i] = d
	}
	start := a.clock.Now()
	bar := newProgress(a.stderr, fmt.Sprintf("restore %s to vSphere", m.ID), total)
	res, err := vsphererestore.Restore(ctx, vsphererestore.Request{Client: c, Datacenter: loc.Datacenter(), Config: m.Config, Disks: in,
		Name: o.vs.name, Datastore: o.vs.datastore, Host: o.vs.host, Cluster: o.vs.cluster, Folder: o.vs.folder,
		Networks: networks, Force: o.force, PowerOn: o.vs.powerOn, Sparse: o.vs.sparse, Progress: bar.Add})
	bar.Done(err)
	if err != nil {
		return err
	}
	return printVSphereRestore(a, o, m, loc, res, a.clock.Since(start))
}

// vsphereRestoreJSON is the --json output of a restore to vSphere.
type vsphereRestoreJSON struct {
	Point    string    `json:"point"`
	SourceVM string    `json:"source_vm"`
	Time     time.Time `json:"time"`
	To       string    `json:"to"`
	*vsphererestore.Result
	Duration float64 `json:"duration_seconds"`
}

func printVSphereRestore(a *app, o restoreOptions, m *repo.Manifest, loc vsphere.Locator, res *vsphererestore.Result, took time.Duration) error {
	if o.asJSON {
		return printJSON(a.stdout, mustJSON(vsphereRestoreJSON{Point: m.ID, SourceVM: m.VM, Time: m.Time, To: loc.String(),
			Result: res, Duration: took.Seconds()}))
	}
	if res.Replaced {
		fmt.Fprintf(a.stdout, "the existing VM %s was powered off and destroyed (--force)\n", res.VM)
	}
	fmt.Fprintf(a.stdout, "restored %s (%s, %s) as VM %s (%s) in %s on datastore %s: %d disk(s), %s uploaded in %s\n",
		m.ID, m.VM, m.Time.Local().Format("2006-01-02 15:04:05"), res.VM, res.MoRef, loc, res.Datastore, len(res.Disks),
		formatBytes(res.BytesUploaded), took.Round(time.Millisecond))
	for _, d := range res.Disks {
		how := "uploaded flat"
		if d.Format == vsphererestore.FormatSparse {
			how = "uploaded sparse (" + formatBytes(d.Bytes) + "), converted to thin"
		}
		fmt.Fprintf(a.stdout, "  disk %d: %s at %s unit %d, %s\n", d.Index, d.File, d.Controller, d.Unit, how)
	}
	for _, n := range res.NICs {
		fmt.Fprintf(a.stdout, "  NIC %s on %s\n", n.Model, n.Network)
	}
	switch {
	case res.MACsKept:
		fmt.Fprintln(a.stdout, "the NICs kept the original VM's MAC addresses")
	case len(res.NICs) > 0:
		fmt.Fprintln(a.stdout, "the NICs have new MAC addresses")
	}
	if res.PoweredOn {
		fmt.Fprintln(a.stdout, "powered on")
	}
	return nil
}

// vsphereRollbackJSON is the --json output of a rollback into a VM.
type vsphereRollbackJSON struct {
	Point    string    `json:"point"`
	SourceVM string    `json:"source_vm"`
	Time     time.Time `json:"time"`
	To       string    `json:"to"`
	Rollback bool      `json:"rollback"`
	*vsphererestore.RollbackResult
	Duration float64 `json:"duration_seconds"`
}

func runVSphereRollback(a *app, cmd *cobra.Command, c *vsphere.Client, loc vsphere.Locator, m *repo.Manifest,
	disks []*restorefs.Disk, dsPaths map[string]string, o restoreOptions, total int64) error {
	start := a.clock.Now()
	bar := newProgress(a.stderr, fmt.Sprintf("rollback %s into %s", m.ID, loc.VMName()), total)
	res, err := vsphererestore.Rollback(cmd.Context(), vsphererestore.RollbackRequest{Client: c, VM: loc.Path, Manifest: m, Disks: disks,
		DatastorePaths: dsPaths, Force: o.force, Workers: o.workers, Progress: bar.Add})
	bar.Done(err)
	if err != nil {
		if res != nil && res.BytesWritten > 0 {
			return fmt.Errorf("%w (the VM's disks are partly rolled back: run the rollback again)", err)
		}
		return err
	}
	took := a.clock.Since(start)
	if o.asJSON {
		return printJSON(a.stdout, mustJSON(vsphereRollbackJSON{Point: m.ID, SourceVM: m.VM, Time: m.Time, To: loc.String(),
			Rollback: true, RollbackResult: res, Duration: took.Seconds()}))
	}
	fmt.Fprintf(a.stdout, "rolled back VM %s to %s (%s): compared %s, wrote %s in %s\n", res.VM, m.ID,
		m.Time.Local().Format("2006-01-02 15:04:05"), formatBytes(res.BytesCompared), formatBytes(res.BytesWritten), took.Round(time.Millisecond))
	for _, d := range res.Disks {
		how := "by changed block tracking (only the areas changed since the point)"
		if d.Method == vsphererestore.MethodCompare {
			how = "by comparing every chunk (" + d.Reason + ")"
		}
		fmt.Fprintf(a.stdout, "  disk %d (%s) %s: compared %s, rewrote %d chunk(s), %s\n", d.Index, d.File, how,
			formatBytes(d.BytesCompared), d.ChunksWritten, formatBytes(d.BytesWritten))
	}
	if res.CBTReset {
		fmt.Fprintln(a.stdout, "changed block tracking was reset before writing: the next backup reads the disks in full")
	}
	return nil
}
