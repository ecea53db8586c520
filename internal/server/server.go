package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/holdfast-backup/holdfast/internal/retry"
	"github.com/holdfast-backup/holdfast/internal/server/api"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/monitor"
	"github.com/holdfast-backup/holdfast/internal/server/notify"
	"github.com/holdfast-backup/holdfast/internal/server/orchestrator"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// Options configure Run.
type Options struct {
	DataDir string
	Listen  string // host:port; port 0 picks a free one
	DB      string // DSN; empty: SQLite in DataDir
	Logger  *slog.Logger
	// Ready, if set, is called with the listening address once the API
	// answers.
	Ready func(addr string)
	// AgentTimeout is how long a proxy may stay silent before its tasks
	// move to another proxy; 0 means 30 s.
	AgentTimeout time.Duration
	// NotifyRetry is the notification delivery retry policy; zero fields
	// take notify.DefaultRetry's.
	NotifyRetry retry.Policy
}

// Run prepares the data directory and serves the API until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return err
	}
	lock, err := lockDataDir(o.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	key, err := secretFile(filepath.Join(o.DataDir, "master.key"), 32)
	if err != nil {
		return err
	}
	ca, err := pki.Init(o.DataDir)
	if err != nil {
		return err
	}
	dsn := o.DB
	if dsn == "" {
		dsn = "sqlite://" + filepath.Join(o.DataDir, "holdfast.db")
	}
	events := monitor.NewEvents()
	wake := &wakeObserver{}
	store, err := configdb.Open(ctx, dsn, configdb.WithMasterKey(key), configdb.WithObserver(observers{events, wake}))
	if err != nil {
		return err
	}
	defer store.Close()
	if err := ensureAdminToken(ctx, store, filepath.Join(o.DataDir, "admin.token")); err != nil {
		return err
	}
	nt := notify.New(notify.Options{Store: store, Retry: o.NotifyRetry, Logger: o.Logger})
	wake.set(nt)
	nctx, stopNotify := context.WithCancel(ctx)
	notifyDone := make(chan error, 1)
	go func() { notifyDone <- nt.Run(nctx) }()
	defer func() { stopNotify(); <-notifyDone }()
	return serve(ctx, o, ca, store, events, nt)
}

func serve(ctx context.Context, o Options, ca *pki.CA, store *configdb.Store, events *monitor.Events, nt *notify.Notifier) error {
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.Listen, err)
	}
	host, _, _ := net.SplitHostPort(o.Listen)
	cert, err := ca.IssueServer(serverHosts(host))
	if err != nil {
		ln.Close()
		return err
	}
	orch := orchestrator.New(orchestrator.Options{Store: store, CA: ca, Cert: cert, Logger: o.Logger,
		AgentTimeout: o.AgentTimeout})
	octx, stopOrch := context.WithCancel(ctx)
	orchDone := make(chan error, 1)
	go func() { orchDone <- orch.Run(octx) }()
	defer func() { stopOrch(); <-orchDone }()
	handler := api.New(store, api.Config{Logger: o.Logger, CA: ca, Runner: orch, Tasks: orch, VMs: orch,
		ServerFingerprint: pki.Fingerprint(cert.Leaf), AgentTimeout: o.AgentTimeout, Notifier: nt})
	if err := monitor.Register(handler.Registry(), events, monitor.NewState(monitor.StateOptions{
		Store: store, Slots: orch, AgentTimeout: o.AgentTimeout, Logger: o.Logger})); err != nil {
		ln.Close()
		return fmt.Errorf("metrics: %w", err)
	}
	site, err := withConsole(handler)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: site, TLSConfig: ca.ServerTLSConfig(cert), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	o.Logger.Info("holdfast server listening on https://"+ln.Addr().String(), "data_dir", o.DataDir)
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// serverHosts names the server certificate: the listen host plus loopback.
func serverHosts(host string) []string {
	hosts := []string{}
	if host != "" && host != "0.0.0.0" && host != "::" {
		hosts = append(hosts, host)
	}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	return append(hosts, "localhost", "127.0.0.1", "::1")
}

// secretFile returns the content of a 0600 file of n random bytes,
// creating it on first use.
func secretFile(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != n {
			return nil, fmt.Errorf("%s: %d bytes, want %d", path, len(b), n)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, n)
	_, _ = rand.Read(b)
	return b, writeExclusive(path, b)
}

func writeExclusive(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ensureAdminToken creates the first administrator token and writes it to
// path, once. The database keeps only its hash.
func ensureAdminToken(ctx context.Context, store *configdb.Store, path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	name := "admin"
	for i := 2; ; i++ {
		tok, err := store.CreateAPIToken(ctx, name, configdb.RoleAdministrator)
		if errors.Is(err, configdb.ErrConflict) && i < 100 {
			name = fmt.Sprintf("admin-%d", i) // the file was deleted: mint a new one
			continue
		}
		if err != nil {
			return fmt.Errorf("create administrator token: %w", err)
		}
		return writeExclusive(path, []byte(tok+"\n"))
	}
}
