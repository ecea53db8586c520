#!/usr/bin/env bash
# Console pages in a real browser: seeds a SQLite configuration database
# with bench/consoleapi's estate (1,000 VMs in 20 jobs, 10,000 restore
# points, 100 running tasks, 10 proxies, 3 repositories), serves it over
# TLS with holdfast server's API and console handlers (in-process, without
# the orchestrator, which would fail the seeded running sessions), logs in
# through the login page with headless chromium and loads each
# console page RUNS times (after one warm-up load), reading the page's
# first-contentful-paint (PerformanceObserver "paint") and its first
# meaningful paint: the first animation frame after the page's main content
# is filled (bench/consoleapi/paint_test.go says which element per page).
# Prints p50/p95 per page. Results: docs/performance.md, "Console pages in
# a real browser".
#
#   bench/console-paint.sh [RUNS]
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-10}
cd "$REPO_ROOT"
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then
	echo "chromium is not installed (apt-get install chromium)" >&2
	exit 1
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
HOLDFAST_BENCH_PAINT=1 HOLDFAST_CHROMIUM="$CHROME" HOLDFAST_BENCH_RUNS="$RUNS" \
	go test -count=1 -timeout 15m -run TestConsolePaint -v ./bench/consoleapi/
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
