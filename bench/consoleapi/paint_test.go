package consoleapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/api"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	webconsole "github.com/holdfast-backup/holdfast/internal/server/console"
)

// paintPages are the console pages measured and, for each, what "its
// main content is filled" means: the selector whose appearance ends the
// first meaningful paint.
var paintPages = []struct{ name, path, filled string }{
	{"dashboard", "/console/", `#content[data-loaded="true"]`},
	{"jobs", "/console/jobs", `#content table tbody tr`},
	{"sessions", "/console/sessions", `#content table tbody tr`},
	{"points", "/console/points", `#content table tbody tr`},
	{"infrastructure", "/console/infrastructure", `#content table tbody tr`},
}

// paintProbe runs in every page before its scripts (a DevTools script):
// it records the first-contentful-paint entry and, as the first
// meaningful paint, the time of the first animation frame after the
// selector in window.__fmpSel matched (the frame that draws it), both in
// ms since the navigation started.
const paintProbe = `(() => {
  window.__paint = {};
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__paint[e.name] = e.startTime; })
    .observe({ type: "paint", buffered: true });
  const sel = sessionStorage.getItem("fmpSel");
  if (!sel) return;
  const done = () => requestAnimationFrame((t) => { window.__paint.fmp = t; });
  const mo = new MutationObserver(() => { if (document.querySelector(sel)) { mo.disconnect(); done(); } });
  mo.observe(document, { subtree: true, childList: true, attributes: true });
})();`

// TestConsolePaint measures each console page's first contentful and
// first meaningful paint in headless chromium (HOLDFAST_CHROMIUM) against
// holdfast server's API and console handlers on a SQLite database seeded
// as TestConsoleAPILoad's (1,000 VMs, 10,000 points, 100 running tasks).
// bench/console-paint.sh runs it; it runs only when HOLDFAST_BENCH_PAINT is
// set. Each page is loaded once to warm the cache up, then
// HOLDFAST_BENCH_RUNS times in the same logged-in tab.
func TestConsolePaint(t *testing.T) {
	if os.Getenv("HOLDFAST_BENCH_PAINT") == "" {
		t.Skip("a benchmark: set HOLDFAST_BENCH_PAINT=1 (bench/console-paint.sh)")
	}
	chrome := os.Getenv("HOLDFAST_CHROMIUM")
	if chrome == "" {
		t.Fatal("HOLDFAST_CHROMIUM: the chromium to drive")
	}
	runs, err := strconv.Atoi(env("HOLDFAST_BENCH_RUNS", "10"))
	if err != nil || runs < 1 {
		t.Fatalf("HOLDFAST_BENCH_RUNS: %v", err)
	}
	ctx := context.Background()
	store, err := configdb.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "holdfast.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	seedDB(t, store)
	token, err := store.CreateAPIToken(ctx, "bench", configdb.RoleAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	// The API and console handlers of holdfast server (internal/server,
	// site.go) over TLS, without the orchestrator: a real server would take
	// over the seeded running sessions (no proxy runs them) and fail them,
	// so the pages would not draw the estate measured. The seeded agents
	// stay online for the run (they never heartbeat again).
	con, err := webconsole.New()
	if err != nil {
		t.Fatal(err)
	}
	apiH := api.New(store, api.Config{AgentTimeout: 24 * time.Hour})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			apiH.ServeHTTP(w, r)
			return
		}
		con.ServeHTTP(w, r)
	}))
	srv.StartTLS()
	defer srv.Close()
	base, hc := srv.URL, srv.Client()
	req, _ := http.NewRequest("POST", base+"/api/v1/users", strings.NewReader(`{"name":"bench","role":"administrator","password":"bench-Console-pw-1"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("create user: HTTP %d", resp.StatusCode)
	}
	t.Logf("before: the dashboard shows %s", dashboardLoad(t, hc, base, token))
	defer func() { t.Logf("after: the dashboard shows %s", dashboardLoad(t, hc, base, token)) }()
	for _, p := range paintPages {
		req, _ := http.NewRequest("GET", base+"/api/v1/"+map[string]string{"dashboard": "dashboard", "jobs": "jobs?summary=true",
			"sessions": "sessions?limit=100", "points": "points?limit=100", "infrastructure": "agents"}[p.name], nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Logf("%s: its main API call answers %d bytes (HTTP %d)", p.name, n, resp.StatusCode)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800),
		chromedp.Flag("ignore-certificate-errors", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: paintProbe}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(c, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	run("log in", chromedp.Navigate(base+"/console/login"), chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#user"), "bench"), chromedp.SendKeys(chromedp.CSS("#password"), "bench-Console-pw-1"),
		chromedp.Click(chromedp.CSS("#login-submit")), chromedp.WaitVisible(chromedp.CSS(`#content[data-loaded="true"]`)))

	// The dashboard draws what is measured: a progress bar per running session.
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelectorAll("#running-table progress").length`)); err != nil || n != float64(console.running) {
		t.Fatalf("the dashboard shows %v progress bars (%v), want %d", n, err, console.running)
	}
	fmt.Printf("%-15s %5s %9s %9s %9s %9s\n", "page", "runs", "FCP p50", "FCP p95", "FMP p50", "FMP p95")
	for _, p := range paintPages {
		var fcp, fmp []float64
		for i := 0; i <= runs; i++ { // run 0 warms the cache up and is not counted
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`sessionStorage.setItem("fmpSel", `+strconv.Quote(p.filled)+`)`)); err != nil {
				t.Fatal(err)
			}
			run("load "+p.name, chromedp.Navigate(base+p.path), chromedp.WaitReady(chromedp.CSS(p.filled)))
			c, cancel := context.WithTimeout(ctx, 30*time.Second)
			m, err := chromedp.Run(c, chromedp.Evaluate[map[string]float64](`new Promise((ok) => { const f = () =>
				window.__paint.fmp && window.__paint["first-contentful-paint"] ? ok(window.__paint) : setTimeout(f, 10); f(); })`,
				chromedp.EvalAwaitPromise))
			cancel()
			if err != nil {
				t.Fatalf("%s: paint timings: %v", p.name, err)
			}
			if i > 0 {
				// A table drawn in the first contentful frame is painted then:
				// the animation frame's time is that frame's start.
				fcp, fmp = append(fcp, m["first-contentful-paint"]), append(fmp, max(m["fmp"], m["first-contentful-paint"]))
			}
		}
		fmt.Printf("%-15s %5d %7.0fms %7.0fms %7.0fms %7.0fms\n", p.name, runs, pct(fcp, 50), pct(fcp, 95), pct(fmp, 50), pct(fmp, 95))
	}
}

// pct is the p-th percentile of v (nearest rank).
func pct(v []float64, p int) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// seedDB seeds TestConsoleAPILoad's estate into store, as of now.
func seedDB(t *testing.T, store *configdb.Store) {
	clk := clock.NewFake(clock.Real().Now().UTC().Truncate(time.Second))
	t0 := clock.Real().Now()
	seed(t, store, clk, console)
	t.Logf("seeded in %v", clock.Real().Now().Sub(t0).Round(time.Millisecond))
}

// dashboardLoad says how many sessions and tasks the dashboard shows
// running, to tell what the pages drew.
func dashboardLoad(t *testing.T, hc *http.Client, base, token string) string {
	req, _ := http.NewRequest("GET", base+"/api/v1/dashboard", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d apitypes.Dashboard
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	tasks := 0
	for _, s := range d.Running {
		tasks += len(s.Tasks)
	}
	return fmt.Sprintf("%d running sessions with %d tasks, %d VMs outside their RPO", len(d.Running), tasks, len(d.RPO.Violations))
}
