package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/agent"
)

// agentServer returns the server URL and the CA certificate (nil: the
// system roots) from --server/--ca or HOLDFAST_SERVER/HOLDFAST_CA.
func (a *app) agentServer(o *clientOptions) (string, []byte, error) {
	server, caFile := o.server, o.ca
	if server == "" {
		server = a.getenv("HOLDFAST_SERVER")
	}
	if caFile == "" {
		caFile = a.getenv("HOLDFAST_CA")
	}
	if server == "" {
		return "", nil, usageError{errors.New("no server given: use --server URL or set HOLDFAST_SERVER")}
	}
	if caFile == "" {
		return server, nil, nil
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return "", nil, fmt.Errorf("CA certificate: %w", err)
	}
	return server, caPEM, nil
}

// agentJoin is how an agent gets its credentials.
type agentJoin struct {
	role, name, joinToken, stateDir, address string
	slots                                    int
}

// credentials loads the agent's state, or joins the server with the join
// token and saves what it received.
func (a *app) agentCredentials(ctx context.Context, log *slog.Logger, server string, caPEM []byte, j agentJoin) (*agent.Credentials, error) {
	creds, err := agent.LoadState(j.stateDir, j.role, j.name)
	if err == nil {
		err = agent.CheckServer(ctx, server, caPEM, creds)
		if err == nil {
			log.Info("using the saved credentials", "role", j.role, "name", j.name, "state_dir", j.stateDir)
			return creds, nil
		}
		if !errors.Is(err, agent.ErrForeignServer) {
			return nil, err
		}
		if j.joinToken == "" {
			return nil, fmt.Errorf("agent state %s: %w: rejoin with --join-token T (create one with 'holdfast %s token' on that server), or remove %s",
				j.stateDir, err, j.role, j.stateDir)
		}
		log.Warn("saved credentials belong to another server; joining anew", "role", j.role, "name", j.name, "server", server, "err", err)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if j.joinToken == "" {
		return nil, usageError{fmt.Errorf("%s has no credentials: --join-token T is required to join the server (create one with 'holdfast %s token')", j.stateDir, j.role)}
	}
	creds, err = agent.Join(ctx, server, caPEM, j.role, j.name, j.joinToken, j.address, j.slots)
	if err != nil {
		return nil, err
	}
	if err := agent.SaveState(j.stateDir, creds); err != nil {
		return nil, fmt.Errorf("save the agent credentials: %w", err)
	}
	log.Info("joined the server", "role", j.role, "name", j.name, "server", server)
	return creds, nil
}

// agentStateDir is given (--state-dir) if set, else the platform's default
// (agent.DefaultStateDir: /var/lib/holdfast/ROLE-NAME as root), unless only
// one of the legacy directories earlier versions used holds credentials:
// that one is used, and a notice says so.
func (a *app) agentStateDir(given, role, name string, legacy ...string) (string, error) {
	if given != "" {
		return given, nil
	}
	home, _ := os.UserHomeDir()
	def, err := agent.DefaultStateDir(role, name, agent.StateEnv{UID: os.Geteuid(), Home: home,
		XDGStateHome: a.getenv("XDG_STATE_HOME"), StateDirectory: a.getenv("STATE_DIRECTORY")})
	if err != nil {
		return "", usageError{fmt.Errorf("%w: give --state-dir", err)}
	}
	dir, notice := agent.ChooseStateDir(def, legacy...)
	if notice != "" {
		fmt.Fprintf(a.stderr, "holdfast: %s %s: %s\n", role, name, notice)
	}
	return dir, nil
}

// foreignServerGuard wraps an agent's server client: a heartbeat that meets
// a server certificate the saved CA did not sign (the server was reinstalled
// while the agent ran) ends the agent's context with an error naming the
// state directory, instead of failing every heartbeat forever. A restart
// with a join token joins the new server.
type foreignServerGuard struct {
	*agent.Client
	stop           context.CancelCauseFunc
	role, stateDir string
}

// guardForeignServer returns ctx's child that the guard ends; after the
// agent returns, stopped gives the guard's error, if it ended it.
func guardForeignServer(ctx context.Context, c *agent.Client, role, stateDir string) (context.Context, *foreignServerGuard, func() error) {
	gctx, stop := context.WithCancelCause(ctx)
	g := &foreignServerGuard{Client: c, stop: stop, role: role, stateDir: stateDir}
	return gctx, g, func() error {
		if cause := context.Cause(gctx); errors.Is(cause, agent.ErrForeignServer) {
			return cause
		}
		stop(nil)
		return nil
	}
}

// HeartbeatLoop is agent.Client's, watching for another server's certificate.
func (g *foreignServerGuard) HeartbeatLoop(ctx context.Context, interval time.Duration, address string, slots int, onErr func(error)) {
	g.Client.HeartbeatLoop(ctx, interval, address, slots, func(err error) {
		if onErr != nil {
			onErr(err)
		}
		if agent.IsForeignServer(err) {
			g.stop(fmt.Errorf("agent state %s: %w: the server now answers with a certificate the saved CA did not sign; "+
				"restart the agent with --join-token T (create one with 'holdfast %s token'), or remove %s",
				g.stateDir, agent.ErrForeignServer, g.role, g.stateDir))
		}
	})
}

// advertised is the address an agent listening on ln announces: advertise if
// set, else the listen address with the host name for an unspecified IP.
func advertised(advertise string, ln net.Listener) string {
	if advertise != "" {
		return advertise
	}
	addr := ln.Addr().String()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, port)
		}
	}
	return addr
}
