// Package consoleapi is the load benchmark of the API calls the web
// console polls (bench/console-api.sh runs it): TestConsoleAPILoad seeds a
// configuration database — SQLite, and PostgreSQL where
// internal/testutil/pgtest finds one — with an estate of the size the
// console must handle (1,000 VMs in 20 jobs, 10,000 restore points, 100
// running tasks, proxies and repositories, a day of sessions), serves the
// API from it on 127.0.0.1, and runs bench/apiload (HOLDFAST_APILOAD)
// against the dashboard, sessions, points, jobs and agents lists from
// concurrent clients. It runs only when HOLDFAST_BENCH_CONSOLE is set.
//
// TestConsolePaint (bench/console-paint.sh, HOLDFAST_BENCH_PAINT) serves
// the same estate with the server's API and console handlers and measures
// each console page's first contentful and first meaningful paint in
// headless chromium.
package consoleapi
