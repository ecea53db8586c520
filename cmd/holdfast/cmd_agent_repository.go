package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/backends"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repoagent"
	"github.com/holdfast-backup/holdfast/internal/server/agent"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
	"github.com/spf13/cobra"
)

// repoAgentOptions are the flags of `holdfast repository` run as an agent.
type repoAgentOptions struct {
	name, path, joinToken, listen, advertise, stateDir string
	slots, proxySessions, immutableDays                int
	sessionTimeout                                     time.Duration
}

// maxImmutableDays bounds --immutable (about 100 years).
const maxImmutableDays = 36500

// addRepositoryAgent makes `holdfast repository --name N --path DIR
// --join-token T` run the repository agent; without these flags the
// command shows its help (subcommands token and list).
func addRepositoryAgent(a *app, c *cobra.Command, o *clientOptions) {
	var ro repoAgentOptions
	c.Use = "repository --name NAME --path DIR --join-token T [--listen ADDR] [--immutable DAYS]"
	c.Long = `Without a subcommand, run a repository agent: open the repository in DIR
(create it first with 'holdfast repo init --repo DIR'), join the server with
a one-time join token ('holdfast repository token'), keep the issued key and
certificate in --state-dir (default /var/lib/holdfast/repository-NAME as
root, else ~/.local/state/holdfast/repository-NAME; DIR/.agent, where earlier
versions kept it, if only that holds them; mode 0700; a restart reuses them
and needs no token; credentials of another server are replaced by joining
again with a token, or the agent exits naming the directory), serve the data
mover protocol over mutual TLS on --listen and heartbeat to the server every
10 s until interrupted.

With --immutable DAYS the agent keeps a hardened repository: whatever the
caller's role or certificate, it refuses to delete or overwrite anything
younger than DAYS (forget of a young point fails with the point and the
date it becomes deletable; gc keeps young unreferenced data) and sets the
immutable attribute (chattr +i) on chunks, indexes, manifests and scan
records once synced, clearing it itself before deleting what the window
no longer protects. Where the file system (tmpfs, overlayfs) or the
process (no CAP_LINUX_IMMUTABLE) does not allow the attribute, it says so
at start and in its heartbeat, and enforces through the protocol only.`
	f := c.Flags()
	f.StringVar(&ro.name, "name", "", "agent name, as jobs refer to the repository")
	f.StringVar(&ro.path, "path", "", "repository directory")
	f.StringVar(&ro.joinToken, "join-token", "", "one-time join token, first start only (default $HOLDFAST_JOIN_TOKEN, which keeps it out of the process list)")
	f.StringVar(&ro.listen, "listen", "127.0.0.1:0", "address to serve the data mover protocol on")
	f.StringVar(&ro.advertise, "advertise", "", "host:port proxies reach this agent at (default: the listen address)")
	f.StringVar(&ro.stateDir, "state-dir", "", "where the agent keeps its key and certificate (default /var/lib/holdfast/repository-NAME as root, else ~/.local/state/holdfast/repository-NAME)")
	f.IntVar(&ro.slots, "slots", runtime.NumCPU(), "concurrent task slots")
	f.IntVar(&ro.proxySessions, "proxy-sessions", repoagent.DefaultProxySessions, "mover sessions one proxy may hold at once")
	f.IntVar(&ro.immutableDays, "immutable", 0,
		"hardened repository: refuse deleting or overwriting anything younger than DAYS, and chattr +i stored files (0: off)")
	f.DurationVar(&ro.sessionTimeout, "session-timeout", 5*time.Minute,
		"an idle mover session ends and releases its repository lock after this long (clients keep theirs alive every minute)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if ro.name == "" && ro.path == "" && ro.joinToken == "" {
			return cmd.Help()
		}
		return runRepositoryAgent(cmd.Context(), a, o, ro)
	}
}

func (ro *repoAgentOptions) validate() error {
	switch {
	case !pki.ValidName(ro.name) || !mover.ValidRepoName(ro.name):
		return fmt.Errorf("--name %q: want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", ro.name)
	case ro.path == "":
		return errors.New("--path DIR is required")
	case ro.slots < 1:
		return fmt.Errorf("--slots %d: want at least 1", ro.slots)
	case ro.proxySessions < 1:
		return fmt.Errorf("--proxy-sessions %d: want at least 1", ro.proxySessions)
	case ro.sessionTimeout < time.Second:
		return fmt.Errorf("--session-timeout %v: want at least 1s", ro.sessionTimeout)
	case ro.immutableDays < 0 || ro.immutableDays > maxImmutableDays:
		return fmt.Errorf("--immutable %d: want 0 (off) to %d days", ro.immutableDays, maxImmutableDays)
	}
	return nil
}

func runRepositoryAgent(ctx context.Context, a *app, o *clientOptions, ro repoAgentOptions) error {
	if err := ro.validate(); err != nil {
		return usageError{err}
	}
	stateDir, err := a.agentStateDir(ro.stateDir, pki.RoleRepository, ro.name, filepath.Join(ro.path, ".agent"))
	if err != nil {
		return err
	}
	ro.stateDir = stateDir
	if ro.joinToken == "" {
		ro.joinToken = a.getenv("HOLDFAST_JOIN_TOKEN")
	}
	server, caPEM, err := a.agentServer(o)
	if err != nil {
		return err
	}
	r, err := a.openAgentRepo(ctx, ro.path)
	if err != nil {
		return err
	}
	defer r.Close()
	ln, err := net.Listen("tcp", ro.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", ro.listen, err)
	}
	defer ln.Close()
	j := agentJoin{role: pki.RoleRepository, name: ro.name, joinToken: ro.joinToken, stateDir: ro.stateDir,
		address: advertised(ro.advertise, ln), slots: ro.slots}
	log := a.daemonLogger()
	creds, err := a.agentCredentials(ctx, log, server, caPEM, j)
	if err != nil {
		return err
	}
	return a.serveRepositoryAgent(ctx, log, server, creds, r, ln, ro, j)
}

// openAgentRepo opens the repository in dir (or the s3:// URL), which
// must exist.
func (a *app) openAgentRepo(ctx context.Context, dir string) (*repo.Repository, error) {
	if backends.IsRemote(dir) {
		a.repoDir = dir
		return a.openRepo(ctx) // says so when the bucket holds no repository
	}
	if _, err := os.Stat(filepath.Join(dir, "config")); err != nil {
		return nil, fmt.Errorf("%s holds no repository: create it first with 'holdfast repo init --repo %s': %w",
			dir, dir, repo.ErrNotInitialized)
	}
	a.repoDir = dir
	return a.openRepo(ctx)
}

// serveRepositoryAgent runs the agent (repoagent.Serve) until ctx ends.
func (a *app) serveRepositoryAgent(ctx context.Context, log *slog.Logger, server string, creds *agent.Credentials,
	r *repo.Repository, ln net.Listener, ro repoAgentOptions, j agentJoin) error {
	client, err := agent.NewClient(server, creds)
	if err != nil {
		return err
	}
	defer client.Close()
	report := repoagent.StorageReport{Path: ro.path, Remote: backends.IsRemote(ro.path)}
	if ro.immutableDays > 0 {
		var h repoagent.Hardening
		r, h = repoagent.Harden(r, ro.immutableDays, nil, log)
		report.Hardening = &h
		attrs := "yes"
		if !h.Attributes {
			attrs = "no: " + h.AttrError
		}
		fmt.Fprintf(a.stdout, "hardened repository: nothing younger than %d days is deleted or overwritten; files immutable (chattr +i): %s\n",
			h.Days, attrs)
	}
	client.SetCapabilities(report)
	ready := a.serviceReady(ctx, log)
	ctx, guard, stopped := guardForeignServer(ctx, client, pki.RoleRepository, ro.stateDir)
	err = repoagent.Serve(ctx, ln, repoagent.Options{Name: j.name, Repo: r, Server: guard, Creds: creds,
		Address: j.address, Slots: j.slots, ProxySessions: ro.proxySessions, SessionTimeout: ro.sessionTimeout,
		Logger: log,
		Notice: func(msg string) { log.Warn(msg, "server", server) },
		Ready: func(addr net.Addr) {
			fmt.Fprintf(a.stdout, "repository %s serving on %s (advertised as %s)\n", j.name, addr, j.address)
			log.Info("repository agent serving", "name", j.name, "addr", addr.String(), "advertised", j.address)
			ready()
		}})
	if ferr := stopped(); ferr != nil {
		return ferr
	}
	return err
}
