package main

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/spf13/cobra"
)

func newProxyCommand(a *app) *cobra.Command {
	c, o := newAgentGroup(a, "proxy", "Run a backup proxy agent, or manage the proxies known to the server")
	addProxyAgent(a, c, o)
	return c
}

func newRepositoryCommand(a *app) *cobra.Command {
	c, o := newAgentGroup(a, "repository", "Run a repository agent, or manage the repositories known to the server")
	addRepositoryAgent(a, c, o)
	return c
}

// newAgentGroup builds `holdfast proxy|repository token|list`.
func newAgentGroup(a *app, role, short string) (*cobra.Command, *clientOptions) {
	o := &clientOptions{}
	c := &cobra.Command{Use: role, Short: short, Args: noArgs}
	addClientFlags(c, o)
	tok := &cobra.Command{
		Use:   "token",
		Short: "Create a one-time join token for a new " + role + " (prints only the token)",
		Args:  noArgs,
	}
	var ttl time.Duration
	tok.Flags().DurationVar(&ttl, "ttl", 0, "how long the token stays valid (default: the server's, 1h)")
	tok.RunE = func(cmd *cobra.Command, _ []string) error {
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		req := apitypes.JoinTokenRequest{Role: role, TTLSeconds: int64(ttl / time.Second)}
		var resp apitypes.JoinToken
		if err := cl.call(cmd.Context(), "POST", "/api/v1/agents/join-tokens", "create join tokens", req, &resp); err != nil {
			return err
		}
		_, err = fmt.Fprintln(a.stdout, resp.Token)
		return err
	}
	c.AddCommand(tok, newAgentList(a, o, role))
	return c, o
}

func newAgentList(a *app, o *clientOptions, role string) *cobra.Command {
	return newListCommand(a, o, listSpec[apitypes.Agent]{
		short: "List the " + role + " agents that joined", what: "list agents",
		path:   "/api/v1/agents?role=" + url.QueryEscape(role),
		header: []string{"NAME", "ADDRESS", "SLOTS", "REGISTERED", "LAST HEARTBEAT"},
		row: func(ag apitypes.Agent) []string {
			return []string{ag.Name, orDash(ag.Address), strconv.Itoa(ag.Slots), fmtTime(&ag.Registered), fmtTime(ag.LastHeartbeat)}
		},
	})
}
