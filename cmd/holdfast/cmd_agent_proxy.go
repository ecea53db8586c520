package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/holdfast-backup/holdfast/internal/proxy"
	"github.com/holdfast-backup/holdfast/internal/server/agent"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/spf13/cobra"
)

// proxyAgentOptions are the flags of `holdfast proxy` run as an agent.
type proxyAgentOptions struct {
	name, joinToken, stateDir string
	slots, workers, conns     int
	transports, reach         []string
	restoreRoots, devices     []string
	datastorePaths            []string // vSphere direct storage access: NAME=DIR
	vsphereVM                 string   // vSphere hot-add: the VM this proxy runs in
	noMount                   bool
	heartbeat                 time.Duration
}

// addProxyAgent makes `holdfast proxy --name N --join-token T` run the
// proxy agent; without these flags the command shows its help (subcommands
// token and list).
func addProxyAgent(a *app, c *cobra.Command, o *clientOptions) {
	var po proxyAgentOptions
	c.Use = "proxy --name NAME --join-token T [--slots N]"
	c.Long = `Without a subcommand, run a backup proxy: join the server with a one-time
join token ('holdfast proxy token'), keep the issued key and certificate in
--state-dir (default /var/lib/holdfast/proxy-NAME as root, else
~/.local/state/holdfast/proxy-NAME; mode 0700; a restart reuses them and needs
no token; credentials of another server — a reinstalled one, a new CA — are
replaced by joining again with a token, or the proxy exits naming the
directory), then take backup and restore tasks from the server
(--slots at a time), reading VM disks and moving their data to repository
agents over mutual TLS, until interrupted.

Restores write only beneath a --restore-root directory, reached without
following any symbolic link, and only to the block devices named by
--restore-device; a proxy with neither refuses every restore (the server
sends it none). An existing non-empty file is replaced, and a device
written over, only when the restore asks for it (--force).`
	f := c.Flags()
	f.StringVar(&po.name, "name", "", "agent name")
	f.StringVar(&po.joinToken, "join-token", "", "one-time join token, first start only (default $HOLDFAST_JOIN_TOKEN, which keeps it out of the process list)")
	f.StringVar(&po.stateDir, "state-dir", "", "where the agent keeps its key and certificate (default /var/lib/holdfast/proxy-NAME as root, else ~/.local/state/holdfast/proxy-NAME; ~/.holdfast/proxy-NAME if only that holds them)")
	f.IntVar(&po.slots, "slots", runtime.NumCPU(), "concurrent task slots")
	f.IntVar(&po.workers, "workers", 0, "parallel chunk workers per task (default 2 × CPUs)")
	f.IntVar(&po.conns, "connections", 2, "connections to each repository agent that chunk uploads are spread over")
	f.StringSliceVar(&po.transports, "transports", nil, "transports this proxy offers: "+source.TransportNames()+" (default all)")
	f.StringArrayVar(&po.reach, "reach", nil, "disks this proxy can read: path or nbd://HOST prefix (repeat; default every disk)")
	f.StringArrayVar(&po.restoreRoots, "restore-root", nil, "directory restores may write files beneath (repeat; default: none, restores refused)")
	f.StringArrayVar(&po.devices, "restore-device", nil, "block device restores may write over, exact path (repeat)")
	f.StringArrayVar(&po.datastorePaths, "datastore-path", nil, "vSphere direct storage access: datastore NAME is mounted at DIR on this proxy, NAME=DIR (repeat)")
	f.StringVar(&po.vsphereVM, "vsphere-vm", "", "vSphere hot-add: the inventory name of the VM this proxy runs in")
	f.BoolVar(&po.noMount, "no-mount", false, "do not serve Instant VM Recovery sessions (the mount server role)")
	f.DurationVar(&po.heartbeat, "heartbeat", agent.HeartbeatInterval, "heartbeat interval (keep it well below the server's --agent-timeout)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if po.name == "" && po.joinToken == "" {
			return cmd.Help()
		}
		return runProxyAgent(cmd.Context(), a, o, po)
	}
}

func runProxyAgent(ctx context.Context, a *app, o *clientOptions, po proxyAgentOptions) error {
	if !pki.ValidName(po.name) {
		return usageError{fmt.Errorf("--name %q: want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", po.name)}
	}
	if po.slots < 1 || po.heartbeat <= 0 {
		return usageError{errors.New("--slots must be at least 1 and --heartbeat positive")}
	}
	if err := checkRestoreRoots(po.restoreRoots, po.devices); err != nil {
		return err
	}
	for _, tr := range po.transports {
		if _, err := source.ParseTransport(tr); err != nil {
			return usageError{fmt.Errorf("--transports: %w", err)}
		}
	}
	paths, err := parseDatastorePaths(po.datastorePaths)
	if err != nil {
		return err
	}
	vs := proxy.VSphereOptions{DatastorePaths: paths, VMName: po.vsphereVM}
	legacy := ""
	if home, err := os.UserHomeDir(); err == nil {
		legacy = filepath.Join(home, ".holdfast", "proxy-"+po.name)
	}
	stateDir, err := a.agentStateDir(po.stateDir, pki.RoleProxy, po.name, legacy)
	if err != nil {
		return err
	}
	po.stateDir = stateDir
	if po.joinToken == "" {
		po.joinToken = a.getenv("HOLDFAST_JOIN_TOKEN")
	}
	server, caPEM, err := a.agentServer(o)
	if err != nil {
		return err
	}
	log := a.daemonLogger()
	j := agentJoin{role: pki.RoleProxy, name: po.name, joinToken: po.joinToken, stateDir: po.stateDir, slots: po.slots}
	creds, err := a.agentCredentials(ctx, log, server, caPEM, j)
	if err != nil {
		return err
	}
	client, err := agent.NewClient(server, creds)
	if err != nil {
		return err
	}
	defer client.Close()
	p, err := proxy.New(proxy.Options{Server: client, Creds: creds, Slots: po.slots, Workers: po.workers,
		Connections: po.conns, StateDir: po.stateDir, RestoreRoots: po.restoreRoots, RestoreDevices: po.devices,
		VSphere: vs, Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "proxy %s taking tasks from %s (%d slots)\n", po.name, server, po.slots)
	client.SetCapabilities(map[string]any{"transports": po.transports, "reach": po.reach, "no_mount": po.noMount,
		"restore_roots": po.restoreRoots, "restore_devices": po.devices, "vsphere_transports": vs.Transports()})
	ctx, guard, stopped := guardForeignServer(ctx, client, pki.RoleProxy, po.stateDir)
	go guard.HeartbeatLoop(ctx, po.heartbeat, "", po.slots, func(err error) {
		log.Warn("heartbeat failed", "server", server, "err", err)
	})
	log.Info("proxy taking tasks", "name", po.name, "server", server, "slots", po.slots)
	a.serviceReady(ctx, log)()
	err = p.Run(ctx)
	if ferr := stopped(); ferr != nil {
		return ferr
	}
	return err
}

// checkRestoreRoots checks --restore-root (existing directories, absolute,
// cleaned) and --restore-device (absolute paths) before the proxy starts.
func checkRestoreRoots(roots, devices []string) error {
	for _, r := range roots {
		if !filepath.IsAbs(r) || filepath.Clean(r) != r || r == "/" {
			return usageError{fmt.Errorf("--restore-root %q: want an absolute, clean path other than /", r)}
		}
		if fi, err := os.Stat(r); err != nil || !fi.IsDir() {
			return usageError{fmt.Errorf("--restore-root %s: not an existing directory", r)}
		}
	}
	for _, d := range devices {
		if !filepath.IsAbs(d) {
			return usageError{fmt.Errorf("--restore-device %q: want an absolute path", d)}
		}
	}
	return nil
}
