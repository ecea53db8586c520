#!/usr/bin/env bash
# Benchmark of the vSphere source against govmomi's simulator in-process
# (issue 13). Prints Markdown tables on stdout, progress on stderr.
#
#   bench/vsphere.sh
#   SIZE=1G bench/vsphere.sh      # flat disk of the throughput comparison
#
# 1. Network mode (nbd: VMDK over the datastore's HTTPS /folder access, as
#    the pipeline reads it) vs a plain parallel HTTPS download of the same
#    flat file from the same simulator (internal/source/vsphere,
#    TestBenchNBDThroughput).
# 2. The real holdfast binary against the simulator with its CBT extension
#    (cmd/holdfast, TestBenchVSphere): a full and a 1 %-changed incremental
#    backup of a 4 GiB disk holding 1 GiB (bytes read vs the changed bytes
#    rounded out to chunks), and the peak memory of full backups of a 4 GiB
#    and a 4 TiB thin disk holding the same 1 GiB.
# The simulator runs in the test process, on the same CPUs as holdfast.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-512M}
need go golang-go

cd "$REPO_ROOT"
echo "Machine: $(machine_line); $(holdfast_version_line); load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
log "network mode vs plain HTTPS download ($SIZE)"
HOLDFAST_BENCH=1 HOLDFAST_BENCH_SIZE=$(to_bytes "$SIZE") go test -count=1 -timeout 20m \
	-run '^TestBenchNBDThroughput$' -v ./internal/source/vsphere/ 2>/dev/null | grep -E '^(\||###|$)'
log "full, incremental and memory through the holdfast binary"
HOLDFAST_BENCH=1 go test -count=1 -timeout 30m -run '^TestBenchVSphere$' -v ./cmd/holdfast/ 2>/dev/null | grep -E '^(\||###|$)'
echo
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
