#!/usr/bin/env bash
# vSphere transports against govmomi's simulator, in-process (issue 13).
# Prints Markdown tables on stdout; progress goes to stderr.
#
#   bench/vsphere-transports.sh
#   DATA=2G SIZES="64G 4T" ROUNDS=5 bench/vsphere-transports.sh
#
# The Go benchmarks in internal/source/vsphere/transport_bench_test.go build one thin
# flat VMDK in the simulator's datastore directory (SIZE bytes, DATA of
# random data in 4 MiB runs spread evenly) and read exactly those runs, as
# CBT would name them, in 4 MiB requests, PARALLEL at a time. Each runs in
# its own process so that its peak RSS is its own (the simulator included).
#
# 1. Network mode: the nbd transport's read throughput against a plain
#    parallel HTTPS download (PARALLEL ranged GETs of 4 MiB) of the same
#    runs of the same flat file from the simulator's /folder. Target ≥ 0.70.
# 2. Memory flat in disk size: peak RSS of each reader for each of SIZES
#    with the same DATA.
# The incremental with 1 % changed (bytes read against the changed bytes
# rounded to chunks) is measured through the binary by bench/vsphere.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZES=${SIZES:-"64G 4T"}          # thin disk sizes for the memory table
THROUGHPUT_SIZE=${THROUGHPUT_SIZE:-16G}
DATA=${DATA:-1G}
PARALLEL=${PARALLEL:-4}           # reads in flight (the pipeline's workers on 2 cores)
REQUEST=${REQUEST:-1M}            # the transports' read size (the default chunk size)
RUN=${RUN:-64M}                   # the data comes in runs of this size (allocated areas)
ROUNDS=${ROUNDS:-3}               # reads per throughput measurement
KEEP=${KEEP:-0}
DATA_BYTES=$(to_bytes "$DATA")

need go golang-go
need /usr/bin/time time

setup_workdir holdfast-vsphere-bench
need_space $((DATA_BYTES * 2 / 1024))
TEST=$WORK/vsphere.test
log "building the benchmark binary"
(cd "$REPO_ROOT" && go test -c -o "$TEST" ./internal/source/vsphere)
LIST=$("$TEST" -test.list 'BenchmarkVSphere.*')
has() { grep -qx "$1" <<<"$LIST"; }

declare -A T RSS CPU OTHER MBPS
# bench KEY BENCHMARK SIZE ROUNDS [BASELINE_REQUEST]: run one benchmark in
# its own process.
bench() {
	local key=$1 name=$2 size=$3 rounds=$4 baseline=${5:-4M}
	mkdir -p "$WORK/tmp-$key"
	measure "$key" env TMPDIR="$WORK/tmp-$key" HF_VSPHERE_BENCH_SIZE="$(to_bytes "$size")" \
		HF_VSPHERE_BENCH_DATA="$DATA_BYTES" HF_VSPHERE_BENCH_PARALLEL="$PARALLEL" \
		HF_VSPHERE_BENCH_REQUEST="$(to_bytes "$REQUEST")" HF_VSPHERE_BENCH_BASELINE_REQUEST="$(to_bytes "$baseline")" \
		HF_VSPHERE_BENCH_RUN="$(to_bytes "$RUN")" \
		"$TEST" -test.run '^$' -test.bench "^$name\$" -test.benchtime "${rounds}x"
	rm -rf "$WORK/tmp-$key"
	MBPS[$key]=$(awk '/^Benchmark/ { for (i = 2; i < NF; i++) if ($(i + 1) == "MB/s") print $i }' "$WORK/$key.out")
	[[ -n ${MBPS[$key]} ]] || die "$name printed no MB/s: $(cat "$WORK/$key.out")"
}

READERS=(direct:BenchmarkVSphereDirect hotadd:BenchmarkVSphereHotAdd https:BenchmarkVSphereHTTPS)
has BenchmarkVSphereNBD && READERS+=(nbd:BenchmarkVSphereNBD)

echo "### vSphere transports against the in-process simulator ($DATA of data in $RUN runs, read in $REQUEST requests, $PARALLEL in flight)"
echo
machine_line
echo
echo "$(holdfast_version_line). Command: \`SIZES=\"$SIZES\" THROUGHPUT_SIZE=$THROUGHPUT_SIZE DATA=$DATA PARALLEL=$PARALLEL REQUEST=$REQUEST RUN=$RUN ROUNDS=$ROUNDS bench/vsphere-transports.sh\`"
echo

# 1. Throughput; the baseline also with the transports' request size.
for r in "${READERS[@]}"; do
	bench "tp-${r%%:*}" "${r#*:}" "$THROUGHPUT_SIZE" "$ROUNDS"
done
bench tp-https-req BenchmarkVSphereHTTPS "$THROUGHPUT_SIZE" "$ROUNDS" "$REQUEST"
bench tp-https-run BenchmarkVSphereHTTPS "$THROUGHPUT_SIZE" "$ROUNDS" "$RUN"
echo "#### Read throughput ($THROUGHPUT_SIZE thin disk, $ROUNDS reads of the runs, page cache warm)"
echo
echo "| reader | MB/s |"
echo "| --- | ---: |"
for r in "${READERS[@]}"; do
	k=${r%%:*}
	case $k in
	https) label="plain parallel HTTPS download (4 MiB ranged GETs, $PARALLEL in flight)" ;;
	*) label="$k transport ($REQUEST reads, $PARALLEL in flight)" ;;
	esac
	echo "| $label | ${MBPS[tp-$k]} |"
done
echo "| plain parallel HTTPS download ($REQUEST ranged GETs, $PARALLEL in flight) | ${MBPS[tp-https-req]} |"
echo "| plain parallel HTTPS download (one streaming GET per $RUN run, $PARALLEL in flight) | ${MBPS[tp-https-run]} |"
if has BenchmarkVSphereNBD; then
	rt=$(ratio "${MBPS[tp-nbd]}" "${MBPS[tp-https]}")
	echo "| nbd / HTTPS with 4 MiB GETs (≥ 0.70) | $rt $(passfail le 0.70 "$rt") |"
	rt=$(ratio "${MBPS[tp-nbd]}" "${MBPS[tp-https-req]}")
	echo "| nbd / HTTPS with $REQUEST GETs (≥ 0.70) | $rt $(passfail le 0.70 "$rt") |"
	rt=$(ratio "${MBPS[tp-nbd]}" "${MBPS[tp-https-run]}")
	echo "| nbd / HTTPS streaming each run (≥ 0.70) | $rt $(passfail le 0.70 "$rt") |"
else
	echo "| nbd / HTTPS (≥ 0.70) | not measured: this build has no nbd transport (BenchmarkVSphereNBD) |"
fi
echo

# 2. Memory against disk size.
for r in "${READERS[@]}"; do
	for s in $SIZES; do
		bench "mem-${r%%:*}-$s" "${r#*:}" "$s" 1
	done
done
first=${SIZES%% *}
last=${SIZES##* }
echo "#### Peak RSS against disk size (the same $DATA in each thin disk; the process includes the simulator)"
echo
printf '| reader |'
for s in $SIZES; do printf ' %s disk: RSS (MiB) | s, with setup |' "$s"; done
printf ' RSS %s / %s |\n' "$last" "$first"
printf '| --- |'
for _ in $SIZES; do printf ' ---: | ---: |'; done
printf ' --- |\n'
for r in "${READERS[@]}"; do
	k=${r%%:*}
	printf '| %s |' "$k"
	for s in $SIZES; do printf ' %d | %s |' $((RSS[mem-$k-$s] / 1024)) "${T[mem-$k-$s]}"; done
	rt=$(ratio "${RSS[mem-$k-$last]}" "${RSS[mem-$k-$first]}")
	printf ' %s %s |\n' "$rt" "$(passfail le "$rt" 1.25)"
done
echo
load_note
