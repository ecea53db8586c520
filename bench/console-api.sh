#!/usr/bin/env bash
# Console API under load: seeds a configuration database (SQLite, and
# PostgreSQL when internal/testutil/pgtest finds one) with 1,000 VMs in 20
# jobs, 10,000 restore points, 100 running tasks, 10 proxies and 3
# repositories, serves the API from it on 127.0.0.1 and measures the calls
# the web console polls with bench/apiload from CLIENTS concurrent clients:
# back to back (saturation) and paced, each client starting a request every
# 100 ms. Results: docs/performance.md, "Console API under load".
#
#   bench/console-api.sh [CLIENTS [REQUESTS]]
#
# HOLDFAST_BENCH_BACKENDS=sqlite skips PostgreSQL;
# HOLDFAST_BENCH_INTERVALS=0,100ms sets the pacing runs.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${1:-20}
REQUESTS=${2:-3000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$REPO_ROOT"
go build -o "$WORK/apiload" ./bench/apiload
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
HOLDFAST_BENCH_CONSOLE=1 HOLDFAST_APILOAD="$WORK/apiload" HOLDFAST_BENCH_CLIENTS="$CLIENTS" \
	HOLDFAST_BENCH_REQUESTS="$REQUESTS" \
	go test -count=1 -timeout 20m -run TestConsoleAPILoad -v ./bench/consoleapi/
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
