package consoleapi

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/api"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/testutil/pgtest"
)

// consolePaths are the calls the console's pages poll.
var consolePaths = []string{
	"/api/v1/dashboard",
	"/api/v1/sessions?limit=50",
	"/api/v1/points?vm=vm0421&limit=50",
	"/api/v1/jobs",
	"/api/v1/agents",
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func TestConsoleAPILoad(t *testing.T) {
	if os.Getenv("HOLDFAST_BENCH_CONSOLE") == "" {
		t.Skip("a benchmark: set HOLDFAST_BENCH_CONSOLE=1 (bench/console-api.sh)")
	}
	apiload := os.Getenv("HOLDFAST_APILOAD")
	if apiload == "" {
		t.Fatal("HOLDFAST_APILOAD: the bench/apiload binary")
	}
	backends := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "holdfast.db") },
		"postgres": func(t *testing.T) string { return pgtest.Open(t).FreshDSN(t) },
	}
	for _, name := range strings.Split(env("HOLDFAST_BENCH_BACKENDS", "sqlite,postgres"), ",") {
		t.Run(name, func(t *testing.T) { loadBackend(t, backends[name](t), apiload) })
	}
}

func loadBackend(t *testing.T, dsn, apiload string) {
	ctx := context.Background()
	clk := clock.NewFake(clock.Real().Now().UTC().Truncate(time.Second))
	store, err := configdb.Open(ctx, dsn, configdb.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t0 := clock.Real().Now()
	seed(t, store, clk, console)
	t.Logf("seeded %d VMs, %d points, %d running tasks in %v", console.jobs*console.vmsPerJob,
		console.jobs*console.vmsPerJob*console.pointsPerVM, console.running*console.tasksPerRun, clock.Real().Now().Sub(t0).Round(time.Millisecond))
	tok, err := store.CreateAPIToken(ctx, "console", configdb.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.New(store, api.Config{Clock: clk}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	defer srv.Close()
	clients := env("HOLDFAST_BENCH_CLIENTS", "20")
	n := env("HOLDFAST_BENCH_REQUESTS", "5000")
	for _, interval := range strings.Split(env("HOLDFAST_BENCH_INTERVALS", "0,100ms"), ",") {
		cmd := exec.CommandContext(ctx, apiload, "-server", "http://"+ln.Addr().String(), "-n", n, "-c", clients,
			"-interval", interval, "-warmup", strconv.Itoa(4*len(consolePaths)), "-paths", strings.Join(consolePaths, ","))
		cmd.Env = append(os.Environ(), "HOLDFAST_TOKEN="+tok)
		out, err := cmd.Output()
		t.Logf("%s backend, %s clients, %s requests, interval %s:\n%s", store.Backend(), clients, n, interval, out)
		if err != nil {
			t.Fatalf("apiload: %v", err)
		}
	}
}
