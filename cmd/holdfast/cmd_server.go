package main

import (
	"errors"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server"
	"github.com/spf13/cobra"
)

func newServerCommand(a *app) *cobra.Command {
	var o server.Options
	c := &cobra.Command{
		Use:   "server --data-dir DIR [--listen ADDR] [--db postgres://…]",
		Short: "Run the backup server (configuration database, REST API, web console)",
		Long: `Run the backup server. On first start it creates DIR with the configuration
database (SQLite, unless --db names a PostgreSQL database), its own CA
(DIR/ca.pem), a master key for stored secrets and an administrator API token
(DIR/admin.token, mode 0600). The REST API is served over HTTPS under /api/v1
(OpenAPI document: /api/v1/openapi.json), the web console under /console/
(users log in with 'holdfast user add'). The server runs jobs: on demand
(job run), by their schedules, split into one task per VM disk that its
proxies take, and restores (restore POINT with --server).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.DataDir == "" {
				return usageError{errors.New("--data-dir DIR is required")}
			}
			o.Logger = a.daemonLogger()
			ready := a.serviceReady(cmd.Context(), o.Logger)
			o.Ready = func(string) { ready() }
			return server.Run(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.DataDir, "data-dir", "", "server data directory (required)")
	c.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:8443", "address to serve HTTPS on")
	c.Flags().DurationVar(&o.AgentTimeout, "agent-timeout", 30*time.Second, "a proxy silent this long is declared lost; its tasks move to another proxy")
	c.Flags().StringVar(&o.DB, "db", "", "configuration database DSN (default: SQLite in the data directory)")
	c.Flags().DurationVar(&o.NotifyRetry.Initial, "notify-retry", 30*time.Second, "first wait before a notification that could not be delivered is sent again (doubling up to an hour)")
	c.Flags().IntVar(&o.NotifyRetry.Attempts, "notify-attempts", 10, "attempts to deliver a notification before it is marked failed")
	return c
}
