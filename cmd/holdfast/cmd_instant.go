package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/backends"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/allowlist"
	"github.com/holdfast-backup/holdfast/internal/export/nfs"
	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/tlsconf"
	"github.com/spf13/cobra"
)

// instantOptions are the flags of instant-recovery start and serve.
type instantOptions struct {
	nbd, nfsBind, nfsPorts, redoDir, id string
	nbdTLS, nbdCreds                    string
	nfs, nfsInsecure, asJSON            bool
	allow                               []string
	cacheMiB                            int
	startQEMU, qemuNetwork              bool
	qemuMemory, qemuCPUs                int
	qemuAccel                           string
	qemuArgs                            []string
	scan                                scanFlags // start only: scan the point first
	vmName                              string
	esxi                                esxiOptions // start only: run the VM on ESXi
	libvirt                             libvirtIROptions
}

func newInstantCommand(a *app) *cobra.Command {
	var stateDir string
	co := &clientOptions{}
	c := &cobra.Command{Use: "instant-recovery", Aliases: []string{"ir"},
		Short: "Boot VMs straight from their backups: serve restore points over NBD and NFS, then migrate them",
		Long: `Boot VMs straight from their backups: serve restore points over NBD and NFS, then migrate them.

Locally (--repo or HOLDFAST_REPOSITORY), the session runs on this host. Through
the backup server (--server, or HOLDFAST_SERVER and no repository given), start
and stop run the session on a proxy — the mount server — that reads the
point from its repository agent. A session's ID is ir- and eight characters
either way: random hex locally, the server's session number through it
(session 42: ir-00000042).`,
		Args: noArgs}
	addClientFlags(c, co)
	c.PersistentFlags().StringVar(&stateDir, "state-dir", "", "where sessions are recorded and keep their redo data (default $HOLDFAST_STATE_DIR, else /var/lib/holdfast/instant as root or ~/.holdfast/instant)")
	c.AddCommand(newInstantStart(a, &stateDir, co, false), newInstantStart(a, &stateDir, co, true), newInstantList(a, &stateDir, co),
		newInstantStop(a, &stateDir, co), newInstantMigrate(a, &stateDir), newInstantShow(a, &stateDir, co))
	return c
}

// instantState returns the state directory and the session registry.
func (a *app) instantState(dir string) (string, instant.Registry, error) {
	if dir == "" {
		dir = a.getenv("HOLDFAST_STATE_DIR")
	}
	abs, err := instant.StateDir(dir)
	if errors.Is(err, instant.ErrNoStateDir) {
		return "", instant.Registry{}, usageError{errors.New("no home directory: give --state-dir")}
	}
	if err != nil {
		return "", instant.Registry{}, err
	}
	reg := instant.RegistryIn(abs)
	reg.Clock = a.clock
	return abs, reg, nil
}

func newInstantStart(a *app, stateDir *string, co *clientOptions, serve bool) *cobra.Command {
	var o instantOptions
	use, short := "start POINT", "Start a recovery session in the background; print its exports when they answer"
	if serve {
		use, short = "serve POINT", "Run a recovery session in the foreground (for a service manager)"
	}
	c := &cobra.Command{Use: use + " [--nbd ADDR] [--nfs] [--redo-dir DIR] [--allow CIDR…] [--json]", Short: short,
		Args: exactArgs(1),
		Long: short + `.

POINT is a restore point of the repository (--repo): an ID, a unique prefix,
"latest" or "VM:latest". Every disk is served read-write: the VM's writes go
to a redo overlay in the subdirectory ID of --redo-dir (default STATE-DIR), never to the
repository. NBD exports disk-0, disk-1 … on --nbd (default 127.0.0.1:10809;
"" turns NBD off). --nfs also serves the NFS export /holdfast/ID (disk-N.img,
disk-N.vmdk, vm.json, the VM folder NAME/ for ESXi and a scratch area for
what clients create) with its own portmapper, MOUNT and NFS services on
--nfs-ports (default 111,1058,2049, as vPower NFS) at --nfs-bind. Only clients
in --allow (default loopback) may connect. Locally, the NBD exports have no
authentication unless --nbd-tls: any process that reaches --nbd from an
allowed address can read and write the disks.

Through the server, the NBD exports take TLS only and require a client
certificate made for the session: start writes it with the CA of the
exports' certificate to --nbd-creds (ca-cert.pem, client-cert.pem,
client-key.pem; QEMU: --object tls-creds-x509,id=tls0,endpoint=client,dir=DIR,
nbdcopy: nbds://HOST:PORT/disk-0?tls-certificates=DIR). --allow defaults to
this host's address as the server sees it; a list covering more than a /24
of IPv4 or a /64 of IPv6 addresses needs an administrator token. NFS has no
TLS or client authentication: through the server --nfs needs --nfs-insecure.

--vsphere vsphere://USER@HOST/DC/host/CLUSTER-OR-HOST[/HOSTNAME] (start,
local repository) then runs the VM on that ESXi host: the NFS export (with
the VM folder NAME/ holding NAME.vmx and NAME-diskN.vmdk generated from the
recorded configuration) is mounted there as the NFS datastore
--datastore-name (default holdfast-ID) from --nfs-host (default --nfs-bind),
and the VM registered as --name (default VM-ID), powered on with
--power-on. ESXi needs the NFS ports 111 and 2049 and its address in
--allow. The password comes from --vsphere-password-file or
HOLDFAST_VSPHERE_PASSWORD. stop undoes it; migrate --vsphere-datastore
moves the VM to production storage (docs/vsphere.md).

--libvirt (start, local repository) defines a libvirt domain on the NBD
exports (at --libvirt-uri, default qemu:///system) and starts it: the
point's domain XML (or --libvirt-xml FILE, or a minimal domain sized by
--qemu-memory/--qemu-cpus) named --name (default VM-ID) with new UUID and
MAC addresses unless --libvirt-keep-identity, no network interfaces unless
--libvirt-network, and its file-backed consoles logging to
REDO-DIR/console-N.log. stop destroys and undefines it; migrate moves it
live onto local images (docs/libvirt.md).

--scan (start, local repository) first scans the point for malware as
'holdfast scan' does and refuses an infected point (exit 1) unless
--on-infection continue, and a point it could not scan (exit 7).`}
	f := c.Flags()
	f.StringVar(&o.nbd, "nbd", "127.0.0.1:10809", "NBD listen address (\"\": no NBD)")
	f.StringVar(&o.nbdTLS, "nbd-tls", "", "require TLS on the NBD exports: DIR holds server-cert.pem and server-key.pem (QEMU's layout)")
	f.BoolVar(&o.nfs, "nfs", false, "also serve the disks over NFS")
	f.StringVar(&o.nfsBind, "nfs-bind", "127.0.0.1", "address the NFS services listen on")
	f.StringVar(&o.nfsPorts, "nfs-ports", "111,1058,2049", "portmapper, MOUNT and NFS ports")
	f.StringVar(&o.redoDir, "redo-dir", "", "directory for the VM's writes: they go to the subdirectory ID Holdfast creates there (default STATE-DIR); a session's own REDO-DIR restarts it")
	f.StringArrayVar(&o.allow, "allow", nil, "client network allowed to connect, CIDR or address (repeat; default loopback; through the server: this host's address as the server sees it)")
	f.BoolVar(&o.nfsInsecure, "nfs-insecure", false, "through the server: serve --nfs although NFS has no TLS and no client authentication (anyone in --allow can read and write the disks)")
	f.StringVar(&o.nbdCreds, "nbd-creds", "", "through the server: where to write the session's NBD client credentials for QEMU's tls-creds-x509 (default STATE-DIR/server-session-N)")
	f.BoolVar(&o.asJSON, "json", false, "print the session as JSON")
	f.IntVar(&o.cacheMiB, "cache", 256, "chunk cache per disk, MiB")
	f.BoolVar(&o.startQEMU, "start-qemu", false, "also start a QEMU VM with the disks on the exports (no network unless --qemu-network)")
	f.IntVar(&o.qemuMemory, "qemu-memory", 0, "--start-qemu: memory, MiB (default: as the point recorded, else 1024)")
	f.IntVar(&o.qemuCPUs, "qemu-cpus", 0, "--start-qemu: virtual CPUs (default: as the point recorded, else 1)")
	f.BoolVar(&o.qemuNetwork, "qemu-network", false, "--start-qemu: connect the VM's NICs (the recorded models) to QEMU user-mode networking")
	f.StringVar(&o.qemuAccel, "qemu-accel", "tcg", "--start-qemu: accelerator, e.g. kvm:tcg")
	f.StringArrayVar(&o.qemuArgs, "qemu-arg", nil, "--start-qemu: extra QEMU argument (repeat)")
	f.StringVar(&o.vmName, "name", "", "name of the VM on ESXi: its .vmx display name and, with --vsphere, its inventory name (default: the point's VM name; --vsphere: NAME-ID); with --libvirt the domain's name (default NAME-ID)")
	f.StringVar(&o.id, "id", "", "session ID (set by start for the serving process)")
	_ = f.MarkHidden("id")
	o.libvirt.register(f)
	if !serve {
		o.scan.add(f, true)
		o.esxi.register(f)
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if serve {
			return runInstantServe(cmd.Context(), a, *stateDir, o, args[0])
		}
		if server, err := a.viaServer(co); err != nil {
			return err
		} else if server {
			if o.scan.scan {
				return usageError{errors.New("--scan needs a local repository (--repo): through the server, scan first with holdfast scan")}
			}
			if o.esxi.target != "" || o.libvirt.enabled {
				return usageError{errors.New("--vsphere and --libvirt need a local repository (--repo)")}
			}
			return runServerInstantStart(cmd.Context(), a, co, *stateDir, o, args[0])
		}
		return runInstantStart(cmd.Context(), a, *stateDir, o, args[0])
	}
	return c
}

func (o *instantOptions) allowList() ([]netip.Prefix, error) {
	out, err := allowlist.Parse(o.allow)
	if err != nil {
		return nil, usageError{fmt.Errorf("--allow: %w", err)}
	}
	return out, nil
}

func (o *instantOptions) ports() (portmap, mount, nfsPort int, err error) {
	parts := strings.Split(o.nfsPorts, ",")
	var p [3]int
	if len(parts) != 3 {
		return 0, 0, 0, usageError{fmt.Errorf("--nfs-ports %q: want PORTMAP,MOUNT,NFS", o.nfsPorts)}
	}
	for i, s := range parts {
		if p[i], err = strconv.Atoi(strings.TrimSpace(s)); err != nil || p[i] < 0 || p[i] > 65535 {
			return 0, 0, 0, usageError{fmt.Errorf("--nfs-ports %q: want three port numbers", o.nfsPorts)}
		}
	}
	return p[0], p[1], p[2], nil
}

// runInstantServe runs a session until interrupted.
func runInstantServe(ctx context.Context, a *app, stateDir string, o instantOptions, ref string) error {
	dir, reg, err := a.instantState(stateDir)
	if err != nil {
		return err
	}
	allow, err := o.allowList()
	if err != nil {
		return err
	}
	if err := o.libvirt.check(&o); err != nil {
		return err
	}
	if o.id == "" {
		o.id = instant.NewID()
	} else if !instant.ValidID(o.id) {
		return usageError{fmt.Errorf("--id %q: not a session ID", o.id)}
	}
	if o.redoDir == "" {
		o.redoDir = dir
	}
	if o.redoDir, err = filepath.Abs(o.redoDir); err != nil {
		return err
	}
	if o.redoDir, o.id, err = reg.SessionDir(o.redoDir, o.id); err != nil {
		return err
	}
	r, m, err := a.openPoint(ctx, ref)
	if err != nil {
		return err
	}
	defer r.Close()
	repoDir := r.Backend().Location()
	if !backends.IsRemote(repoDir) {
		if repoDir, err = filepath.Abs(repoDir); err != nil {
			return err
		}
	}
	log := a.daemonLogger()
	ready := a.serviceReady(ctx, log)
	so := instant.Options{ID: o.id, Store: r, Holder: r, Point: m, RepoName: repoDir, RedoDir: o.redoDir,
		NBD: o.nbd, VMName: o.vmName, Allow: allow, Cache: int64(o.cacheMiB) << 20, Registry: reg, Logger: log,
		Ready: func(rec instant.Record) { a.printInstant(rec, o.asJSON); ready() }}
	if o.nbdTLS != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(o.nbdTLS, "server-cert.pem"), filepath.Join(o.nbdTLS, "server-key.pem"))
		if err != nil {
			return fmt.Errorf("--nbd-tls: %w", err)
		}
		so.NBDTLS = tlsconf.Base()
		so.NBDTLS.Certificates = []tls.Certificate{cert}
	}
	if o.nfs {
		pm, mnt, np, err := o.ports()
		if err != nil {
			return err
		}
		ls, err := nfs.Listen(o.nfsBind, pm, mnt, np)
		if err != nil {
			return fmt.Errorf("NFS services on %s ports %s: %w", o.nfsBind, o.nfsPorts, err)
		}
		so.NFS, so.NFSHost = &ls, o.nfsBind
	}
	if o.startQEMU {
		so.VM = &instant.VMOptions{Memory: o.qemuMemory, CPUs: o.qemuCPUs, Network: o.qemuNetwork, Accel: o.qemuAccel,
			Extra: o.qemuArgs}
	}
	if so.Libvirt, err = o.libvirt.options(o); err != nil {
		return err
	}
	return instant.Serve(ctx, so) // SIGTERM (instant-recovery stop) and SIGINT cancel ctx in main
}

// printInstant prints a serving session: its ID and per disk the URLs.
func (a *app) printInstant(rec instant.Record, asJSON bool) {
	if asJSON {
		_ = printJSON(a.stdout, mustJSON(rec))
		return
	}
	fmt.Fprintf(a.stdout, "session %s: %s of %s (%s), redo in %s\n", rec.ID, rec.VM, rec.Point, rec.State(), rec.RedoDir)
	for _, d := range rec.Disks {
		fmt.Fprintf(a.stdout, "  disk %d (%s): %s %s\n", d.Index, formatBytes(d.Size), orDash(d.NBDURL), d.NFSURL)
	}
	a.printESXi(rec)
	a.printLibvirt(rec)
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// runInstantStart runs `serve` as a background process and waits until its
// exports answer (instant.Registry.Start).
func runInstantStart(ctx context.Context, a *app, stateDir string, o instantOptions, ref string) error {
	dir, reg, err := a.instantState(stateDir)
	if err != nil {
		return err
	}
	if _, err := o.allowList(); err != nil {
		return err
	}
	if err := o.libvirt.check(&o); err != nil {
		return err
	}
	var loc vsphere.Locator
	var co vsphere.ConnectOptions
	if o.esxi.target != "" {
		o.nfs = true
		if loc, co, err = o.esxi.check(a, &o); err != nil {
			return err
		}
	}
	if o.scan.scan {
		if ref, err = a.scanBeforeRef(ctx, o.scan, ref); err != nil {
			return err
		}
	}
	redo := o.redoDir
	if redo == "" {
		redo = dir
	}
	if redo, err = filepath.Abs(redo); err != nil {
		return err
	}
	rec, err := reg.Start(ctx, instant.StartOptions{RedoDir: redo, Command: func(id, redo string) (*exec.Cmd, error) {
		return a.instantServeCommand(ctx, ref, dir, id, redo, o)
	}})
	if err != nil {
		return err
	}
	if o.esxi.target != "" {
		if rec, err = attachESXi(ctx, a, reg, rec, o.esxi, o.vmName, loc, co); err != nil {
			return err
		}
	}
	a.printInstant(rec, o.asJSON)
	return nil
}

// instantServeCommand is the `serve` process that start runs in the
// background for session id with the flags start was given.
func (a *app) instantServeCommand(ctx context.Context, ref, stateDir, id, redo string, o instantOptions) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"instant-recovery", "serve", ref, "--state-dir", stateDir, "--id", id, "--redo-dir", redo,
		"--nbd", o.nbd, "--nfs-bind", o.nfsBind, "--nfs-ports", o.nfsPorts, "--cache", strconv.Itoa(o.cacheMiB)}
	if o.nfs {
		args = append(args, "--nfs")
	}
	if o.vmName != "" {
		args = append(args, "--name", o.vmName)
	}
	if o.nbdTLS != "" {
		tlsDir, err := filepath.Abs(o.nbdTLS)
		if err != nil {
			return nil, err
		}
		args = append(args, "--nbd-tls", tlsDir)
	}
	if o.startQEMU {
		args = append(args, "--start-qemu", "--qemu-memory", strconv.Itoa(o.qemuMemory), "--qemu-cpus", strconv.Itoa(o.qemuCPUs),
			"--qemu-accel", o.qemuAccel)
		if o.qemuNetwork {
			args = append(args, "--qemu-network")
		}
		for _, q := range o.qemuArgs {
			args = append(args, "--qemu-arg="+q)
		}
	}
	for _, s := range o.allow {
		args = append(args, "--allow", s)
	}
	args = append(args, o.libvirt.args(o)...)
	return a.repoChild(ctx, self, args)
}

func newInstantList(a *app, stateDir *string, co *clientOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "list [--json]", Short: "List recovery sessions (serving and stopped) and their clients", Args: noArgs}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if server, err := a.viaServer(co); err != nil {
			return err
		} else if server {
			return runServerInstantList(cmd.Context(), a, co, asJSON)
		}
		_, reg, err := a.instantState(*stateDir)
		if err != nil {
			return err
		}
		recs, err := reg.List()
		if err != nil {
			return err
		}
		rows := []instantRow{}
		for _, r := range recs {
			rows = append(rows, a.instantRow(cmd.Context(), reg, r))
		}
		if asJSON {
			return printJSON(a.stdout, mustJSON(rows))
		}
		var cells [][]string
		for _, r := range rows {
			clients := strconv.Itoa(len(r.Clients))
			if r.ClientsErr != "" {
				clients = "?"
			}
			cells = append(cells, []string{r.ID, r.VM, r.Point, r.State, orDash(r.Runs), strconv.Itoa(len(r.Disks)), clients,
				orDash(r.NBDAddr), orDash(r.NFSPath), r.RedoDir})
		}
		return table(a.stdout, []string{"ID", "VM", "POINT", "STATE", "RUNS", "DISKS", "CLIENTS", "NBD", "NFS", "REDO"}, cells)
	}
	return c
}

// instantRow is a session as list and show print it: its record, state
// and, while it serves, the clients of its exports.
type instantRow struct {
	instant.Record
	State      string           `json:"state"`
	Runs       string           `json:"runs,omitempty"` // what runs the VM: libvirt, qemu, esxi
	Clients    []instant.Client `json:"clients"`
	ClientsErr string           `json:"clients_error,omitempty"`
}

func (a *app) instantRow(ctx context.Context, reg instant.Registry, r instant.Record) instantRow {
	row := instantRow{Record: r, State: r.State(), Runs: runMode(r), Clients: []instant.Client{}}
	if row.State == "serving" {
		cl, err := reg.Clients(ctx, r.ID)
		if err != nil {
			row.ClientsErr = err.Error()
		} else if cl != nil {
			row.Clients = cl
		}
	}
	return row
}

func newInstantShow(a *app, stateDir *string, co *clientOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "show ID [--json]", Short: "Show a recovery session: its exports, redo data, VM and clients", Args: exactArgs(1),
		Long: `Show a recovery session: its exports, redo data, VM and clients.

Clients are the NBD connections to its exports (address, export, since) and
the NFS clients (address, export) that hold an NFS connection open or made
a request in the last 2 minutes (unless they unmounted) — NFS has no
sessions, and QEMU's NFS client does not unmount. The VM the session started
(--start-qemu) is not listed among them. Through the server, ID is the one
start printed (ir- and the session number) or the bare session number, and
the clients are those its mount server last reported (every second).`}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if server, err := a.viaServer(co); err != nil {
			return err
		} else if server {
			return runServerInstantShow(cmd.Context(), a, co, args[0], asJSON)
		}
		_, reg, err := a.instantState(*stateDir)
		if err != nil {
			return err
		}
		rec, err := reg.Load(args[0])
		if err != nil {
			return err
		}
		row := a.instantRow(cmd.Context(), reg, rec)
		if asJSON {
			return printJSON(a.stdout, mustJSON(row))
		}
		fmt.Fprintf(a.stdout, "session %s: %s of %s (%s), redo in %s\n", rec.ID, rec.VM, rec.Point, row.State, rec.RedoDir)
		for _, d := range rec.Disks {
			fmt.Fprintf(a.stdout, "  disk %d (%s): %s %s\n", d.Index, formatBytes(d.Size), orDash(d.NBDURL), d.NFSURL)
		}
		if rec.QEMU > 0 {
			fmt.Fprintf(a.stdout, "VM: pid %d (running: %v), QMP %s\n", rec.QEMU, rec.VMRunning(), instant.QMPSocket(rec.RedoDir))
		}
		a.printESXi(rec)
		a.printLibvirt(rec)
		printClients(a, row.Clients, row.ClientsErr)
		return nil
	}
	return c
}

func newInstantStop(a *app, stateDir *string, co *clientOptions) *cobra.Command {
	var discard, force bool
	var vs vsphereFlags
	c := &cobra.Command{Use: "stop ID [--discard] [--force]", Short: "Stop a recovery session: remove its exports; keep (or --discard) the redo data",
		Args: exactArgs(1),
		Long: `Stop a recovery session: remove its exports; keep (or --discard) the redo data.

A session whose exports have clients — NBD connections, NFS clients with a
connection open or a request in the last 2 minutes — other than the VM it
started is not stopped: the command names them and exits 2, unless --force
(the clients are cut off). A VM the session started is stopped with it.

A session whose VM runs on ESXi (start --vsphere) first powers that VM off,
unregisters it (its files are the backup's: it is never deleted) and
removes the NFS datastore — also when the start was killed half-way — then
stops (the host was the export's client). The password comes from
--vsphere-password-file or HOLDFAST_VSPHERE_PASSWORD, as for start.`}
	c.Flags().BoolVar(&discard, "discard", false, "also delete the redo data (the VM's writes) and forget the session")
	c.Flags().BoolVar(&force, "force", false, "stop the session although clients use its exports (they are cut off)")
	vs.register(c.Flags())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if server, err := a.viaServer(co); err != nil {
			return err
		} else if server {
			return runServerInstantStop(cmd.Context(), a, co, args[0], force)
		}
		_, reg, err := a.instantState(*stateDir)
		if err != nil {
			return err
		}
		rec, err := reg.Load(args[0])
		if err != nil {
			return err
		}
		if rec.ESXi != nil && !rec.ESXi.Removed {
			if rec, err = detachESXi(cmd.Context(), a, reg, rec, vs); err != nil {
				return err
			}
			force = true // the host was the export's client; its VM is gone
		}
		rec, err = reg.Stop(cmd.Context(), args[0], instant.StopOptions{Force: force})
		if err != nil {
			return err
		}
		if rec, err = removeLostDomain(cmd.Context(), a, reg, rec); err != nil {
			return err
		}
		if discard {
			d, err := reg.Discard(cmd.Context(), rec)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "session %s stopped; %s\n", rec.ID, a.discarded(rec, d))
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "session %s stopped; redo data kept in %s\n", rec.ID, rec.RedoDir)
		return err
	}
	return c
}

func newInstantMigrate(a *app, stateDir *string) *cobra.Command {
	var to []string
	var disk int
	var keep, force bool
	var vds string
	var vs vsphereFlags
	c := &cobra.Command{Use: "migrate ID --to PATH [--to PATH …] [--disk N] [--force] | migrate ID --to DIR (libvirt) | migrate ID --vsphere-datastore DS",
		Short: "Move the VM to production storage (point + its writes), then end the session",
		Args:  exactArgs(1),
		Long: `Write what the VM sees — the restore point with the VM's writes applied — to
production images (raw; .qcow2 names are written as qcow2): one --to per disk
in disk order, or --disk N with one --to. Then the session ends and its redo
data is deleted (--keep-redo keeps it).

A session started with --start-qemu is migrated live: QEMU mirrors each disk
onto its image while the VM runs and pivots onto it (blockdev-mirror), the VM
keeps running from production storage, and the exports go away; its QMP
socket and logs stay in the redo directory while it runs. Otherwise the
session is stopped first and the images are written from the redo data.

A libvirt domain (start --libvirt) is migrated live by virDomainBlockCopy and
a pivot onto each image (--to DIR: DIR/DOMAIN-vda.qcow2 …); it keeps running
from them, its definition names them, and the session ends without it.

Either way a session whose exports have other clients (see stop) is not
migrated: the command names them and exits 2, unless --force.

A session whose VM runs on ESXi (start --vsphere) is migrated with
--vsphere-datastore DS instead: vSphere relocates the VM onto datastore DS
(Storage vMotion, RelocateVM_Task; running or not), the VM stays registered
and is production's from then on; the NFS datastore is removed and the
session ends.`}
	c.Flags().StringArrayVar(&to, "to", nil, "production image to write (repeat per disk)")
	c.Flags().IntVar(&disk, "disk", -1, "migrate only disk N (with one --to)")
	c.Flags().BoolVar(&keep, "keep-redo", false, "keep the session and its redo data afterwards")
	c.Flags().BoolVar(&force, "force", false, "migrate although clients use the session's exports (stopping it cuts them off)")
	c.Flags().StringVar(&vds, "vsphere-datastore", "", "relocate the session's VM on ESXi onto this datastore (Storage vMotion)")
	vs.register(c.Flags())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		_, reg, err := a.instantState(*stateDir)
		if err != nil {
			return err
		}
		rec, err := reg.Load(args[0])
		if err != nil {
			return err
		}
		switch {
		case vds != "" && (len(to) > 0 || disk >= 0):
			return usageError{errors.New("--vsphere-datastore and --to exclude each other")}
		case vds != "":
			return migrateESXi(ctx, a, reg, rec, vds, vs, keep)
		case rec.ESXi != nil && !rec.ESXi.Removed:
			return usageError{fmt.Errorf("session %s's VM runs on ESXi: migrate it with --vsphere-datastore DS (or stop the session first)", rec.ID)}
		}
		to = libvirtTargets(rec, to)
		targets := map[int]string{}
		switch {
		case len(to) == 0:
			return usageError{errors.New("--to PATH is required")}
		case disk >= 0 && len(to) != 1:
			return usageError{errors.New("--disk N takes exactly one --to")}
		case disk >= 0:
			targets[disk] = to[0]
		case len(to) != len(rec.Disks):
			return usageError{fmt.Errorf("the VM has %d disk(s): give one --to each (or --disk N)", len(rec.Disks))}
		default:
			for i, p := range to {
				targets[i] = p
			}
		}
		start := a.clock.Now()
		res, err := reg.MigrateSession(ctx, rec.ID, instant.MigrateOptions{Targets: targets, KeepRedo: keep, Force: force,
			Store: func(ctx context.Context) (repo.PointReader, func(), error) {
				r, err := a.openRepo(ctx)
				if err != nil {
					return nil, nil, err
				}
				return r, func() { r.Close() }, nil
			}})
		if errors.Is(err, instant.ErrTargets) {
			return usageError{err}
		}
		if err != nil {
			return err
		}
		ended := "session ended"
		if res.Discarded != nil {
			ended += "; " + a.discarded(res.Record, *res.Discarded)
		}
		took := a.clock.Since(start).Round(time.Millisecond)
		if res.Live {
			_, err = fmt.Fprintf(a.stdout, "migrated session %s live in %s: %s now runs from %s; %s\n",
				rec.ID, took, liveVM(res.Record), strings.Join(to, ", "), ended)
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "migrated session %s to %s in %s: %s written (%s the VM wrote), %s\n",
			rec.ID, strings.Join(to, ", "), took, formatBytes(res.Written), formatBytes(res.FromRedo), ended)
		return err
	}
	return c
}

// discarded says what instant.Registry.Discard did, and warns when the
// session's hold on its point stays.
func (a *app) discarded(rec instant.Record, d instant.Discarded) string {
	if d.HoldErr != nil {
		fmt.Fprintf(a.stderr, "warning: the hold of session %s on point %s stays (%v): release it with holdfast holds release %s %s\n",
			rec.ID, rec.Point, d.HoldErr, rec.Point, rec.ID)
	}
	msg := "redo data discarded"
	if len(d.Left) > 0 {
		msg = fmt.Sprintf("redo data discarded; %s left in %s", strings.Join(d.Left, ", "), rec.RedoDir)
	}
	if d.VM {
		msg += fmt.Sprintf(" (the VM, pid %d, runs on: once it ended, holdfast instant-recovery stop %s --discard removes the rest)", rec.QEMU, rec.ID)
	}
	return msg
}
