package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"

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
		log.Info("using the saved credentials", "role", j.role, "name", j.name, "state_dir", j.stateDir)
		return creds, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
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
