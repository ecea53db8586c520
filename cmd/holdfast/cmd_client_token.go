package main

import (
	"fmt"
	"net/url"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/spf13/cobra"
)

// tokenRoles are the API token roles, as the server names them.
const tokenRoles = "administrator, backup_operator, restore_operator or viewer"

func newTokenCommand(a *app) *cobra.Command {
	o := &clientOptions{}
	c := &cobra.Command{Use: "token", Short: "API tokens on the server: create, list, delete (administrators)", Args: noArgs}
	addClientFlags(c, o)
	c.AddCommand(newTokenCreate(a, o), newTokenList(a, o), &cobra.Command{
		Use: "delete NAME", Short: "Revoke an API token", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.jobAction(cmd.Context(), o, "DELETE", "/api/v1/tokens/"+url.PathEscape(args[0]),
				"delete tokens", "deleted token "+args[0])
		},
	})
	return c
}

func newTokenCreate(a *app, o *clientOptions) *cobra.Command {
	var role string
	c := &cobra.Command{
		Use:   "create NAME --role ROLE",
		Short: "Create an API token (prints only the token, this once)",
		Long: `Create an API token and print it, this once: the server keeps only its hash.
ROLE is ` + tokenRoles + `. A viewer token reads everything but
secrets and changes nothing: give one to Prometheus to scrape /metrics
(docs/monitoring.md).`,
		Args: exactArgs(1),
	}
	c.Flags().StringVar(&role, "role", "", "token role: "+tokenRoles+" (required)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		switch role {
		case "administrator", "backup_operator", "restore_operator", "viewer":
		default:
			return usageError{fmt.Errorf("--role %q: want %s", role, tokenRoles)}
		}
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		var resp apitypes.NewToken
		req := apitypes.TokenRequest{Name: args[0], Role: role}
		if err := cl.call(cmd.Context(), "POST", "/api/v1/tokens", "create tokens", req, &resp); err != nil {
			return err
		}
		_, err = fmt.Fprintln(a.stdout, resp.Token)
		return err
	}
	return c
}

func newTokenList(a *app, o *clientOptions) *cobra.Command {
	return newListCommand(a, o, listSpec[apitypes.Token]{
		short: "List API tokens (never their secrets)", what: "list tokens", path: "/api/v1/tokens",
		header: []string{"NAME", "ROLE", "CREATED", "LAST USED"},
		row: func(t apitypes.Token) []string {
			return []string{t.Name, t.Role, fmtTime(&t.Created), fmtTime(t.LastUsed)}
		},
	})
}
