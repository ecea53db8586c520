#!/usr/bin/env bash
# Benchmark of object-storage repositories (issue 14): what each command
# costs in S3 requests, and restore from S3 against restore from a local
# repository. A real S3 server (versitygw, scripts/setup installs it) runs on
# loopback behind bench/s3count, a proxy that counts requests by operation.
# Prints Markdown tables for docs/performance.md on stdout.
#
#   bench/s3.sh                       # 1 GiB disk, 1 MiB chunks
#   SIZE=256M CHUNK=256KiB bench/s3.sh
#   SYNTH_CHUNKS=100000 bench/s3.sh   # and a 100 k-chunk repository (default)
#   SYNTH_CHUNKS=0 bench/s3.sh        # without it
#
# The disk holds distinct compressible data (base64 of random bytes). Steps,
# each counted alone: full backup; the same backup again (nothing changed:
# every chunk is reused); an incremental after 1 % of the chunks changed;
# restore of the disk; verify (metadata) and verify --read-data; forget of
# the first point and gc. The same full backup and restore also run against a
# local repository for the throughput ratio.
#
# Then a second repository is filled by bench/s3synth with SYNTH_CHUNKS
# small distinct chunks in 10 points (fast: one PUT per chunk), and counted
# there: verify (metadata); gc with nothing to remove; a backup of a small
# new disk from a host without a chunk cache, and again with the cache; a
# forget of one point and the gc that removes its chunks; the
# backup after that gc (the cache is stale and rebuilt).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-1G}
SYNTH_CHUNKS=${SYNTH_CHUNKS:-100000}
LATENCY_MS=${LATENCY_MS:-20}
CHUNK=${CHUNK:-1MiB}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}
SIZE_BYTES=$(to_bytes "$SIZE")
need jq jq
need base64 coreutils

setup_workdir holdfast-s3
BIN=$WORK/holdfast
holdfast_binary "$BIN"
(cd "$REPO_ROOT" && go build -o "$WORK/s3count" ./bench/s3count && go build -o "$WORK/s3synth" ./bench/s3synth)
export XDG_CACHE_HOME=$WORK/cache # the chunk cache of this run

start_versitygw
CPORT=$(free_port)
"$WORK/s3count" -listen "127.0.0.1:$CPORT" -target "http://127.0.0.1:$VPORT" >"$WORK/count.log" 2>&1 &
COUNT_PID=$!
EXTRA_CLEANUP="kill $VGW_PID $COUNT_PID 2>/dev/null; wait 2>/dev/null"
for _ in $(seq 200); do port_busy "$VPORT" && port_busy "$CPORT" && break; sleep 0.1; done
S3=s3+http://127.0.0.1:$CPORT/bench/repo
LOCAL=$WORK/local-repo

log "making a $SIZE disk of distinct compressible data"
# (base64 dies of SIGPIPE when head has enough: not a failure)
compressible_file "$WORK/disk.img" "$SIZE_BYTES"
[[ $(stat -c %s "$WORK/disk.img") == "$SIZE_BYTES" ]] || die "could not make the disk image"
CHUNK_BYTES=$(to_bytes "$CHUNK")
CHUNKS=$(( (SIZE_BYTES + CHUNK_BYTES - 1) / CHUNK_BYTES ))

reset() { curl -s -X POST "http://127.0.0.1:$CPORT/__counts/reset" >/dev/null; }
declare -A REQ=()
counted() { # NAME CMD...: measure and record the request counts
	local name=$1; shift
	reset
	measure "$name" "$@"
	REQ[$name]=$(curl -s "http://127.0.0.1:$CPORT/__counts")
}
field() { jq -r ".${2} // 0" <<<"${REQ[$1]}"; }

counted init "$BIN" repo init --repo "$S3" --chunk-size "$CHUNK"
counted full "$BIN" backup --repo "$S3" --name vm1 --json "$WORK/disk.img"
counted again "$BIN" backup --repo "$S3" --name vm1 --json "$WORK/disk.img"
# change 1 % of the chunks (at least one), spread over the disk
n=$(( CHUNKS / 100 > 0 ? CHUNKS / 100 : 1 ))
for i in $(seq 0 $((n - 1))); do
	dd if=/dev/urandom of="$WORK/disk.img" bs=4096 count=1 seek=$(( (i * CHUNKS / n) * CHUNK_BYTES / 4096 )) conv=notrunc status=none
done
counted incr "$BIN" backup --repo "$S3" --name vm1 --json "$WORK/disk.img"
counted restore "$BIN" restore --repo "$S3" vm1:latest --disk 0 --to "$WORK/restored-s3.img"
measure restore2 "$BIN" restore --repo "$S3" vm1:latest --disk 0 --to "$WORK/restored-s3.img" --force
cmp "$WORK/disk.img" "$WORK/restored-s3.img" || die "restore from S3 differs"
counted verify "$BIN" verify --repo "$S3"
counted verifydata "$BIN" verify --repo "$S3" --read-data
"$BIN" forget --repo "$S3" --keep-last 1 >/dev/null
counted gc "$BIN" gc --repo "$S3" --grace 0s --json

"$BIN" repo init --repo "$LOCAL" --chunk-size "$CHUNK" >/dev/null
measure localfull "$BIN" backup --repo "$LOCAL" --name vm1 "$WORK/disk.img"
measure localrestore "$BIN" restore --repo "$LOCAL" vm1:latest --disk 0 --to "$WORK/restored-local.img"
measure localrestore2 "$BIN" restore --repo "$LOCAL" vm1:latest --disk 0 --to "$WORK/restored-local.img" --force
cmp "$WORK/disk.img" "$WORK/restored-local.img" || die "local restore differs"

GIB=$(awk -v b="$SIZE_BYTES" 'BEGIN { printf "%.4f", b / 1073741824 }')
stored=$(jq -r '.disks[0].bytes_stored' "$WORK/full.out")
echo "### Object storage: requests per command"
echo
machine_line
echo
echo "\`SIZE=$SIZE CHUNK=$CHUNK bench/s3.sh\` — $CHUNKS chunks of $CHUNK, distinct compressible data ($(mib "$stored") MiB stored), versitygw on loopback behind a counting proxy."
echo
echo "| step | PUT | GET | HEAD | COPY | DELETE | LIST | total | per GiB of disk | wall s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for s in init full again incr restore verify verifydata gc; do
	tot=$(field "$s" TOTAL)
	echo "| $s | $(field "$s" PUT) | $(field "$s" GET) | $(field "$s" HEAD) | $(field "$s" COPY) | $(field "$s" DELETE) | $(field "$s" LIST) | $tot | $(awk -v t="$tot" -v g="$GIB" 'BEGIN { printf "%.0f", t / g }') | ${T[$s]} |"
done
echo
echo "| restore | wall s | MiB/s | vs local |"
echo "|---|---:|---:|---:|"
lbest=$(stats "${T[localrestore]}" "${T[localrestore2]}" | cut -d' ' -f1)
sbest=$(stats "${T[restore]}" "${T[restore2]}" | cut -d' ' -f1)
echo "| local repository | $lbest | $(mibps "$SIZE_BYTES" "$lbest") | 1.00 |"
echo "| S3 (versitygw, loopback) | $sbest | $(mibps "$SIZE_BYTES" "$sbest") | $(ratio "$lbest" "$sbest") |"
echo
echo "(best of two runs each)"
echo
if (( SYNTH_CHUNKS > 0 )); then
	SYN=s3+http://127.0.0.1:$CPORT/bench/synth
	"$BIN" repo init --repo "$SYN" --chunk-size 256KiB >/dev/null
	log "filling a repository with $SYNTH_CHUNKS chunks"
	counted synth "$WORK/s3synth" -repo "$SYN" -chunks "$SYNTH_CHUNKS" -points 10
	compressible_file "$WORK/small.img" $((32 << 20))
	counted sverify "$BIN" verify --repo "$SYN"
	counted sgc0 "$BIN" gc --repo "$SYN" --grace 0s --json
	rm -rf "$XDG_CACHE_HOME"
	counted sbackupcold "$BIN" backup --repo "$SYN" --name small --json "$WORK/small.img"
	counted sbackupwarm "$BIN" backup --repo "$SYN" --name small --json "$WORK/small.img"
	"$BIN" forget --repo "$SYN" --vm synth --keep-last 9 >/dev/null
	counted sgc "$BIN" gc --repo "$SYN" --grace 0s --json
	counted sbackupaftergc "$BIN" backup --repo "$SYN" --name small --json "$WORK/small.img"
	removed=$(jq -r '.removed_chunks' "$WORK/sgc.out")
	# Restore with an emulated first-byte latency: what parallel fetches buy.
	curl -s -X POST "http://127.0.0.1:$CPORT/__latency?ms=$LATENCY_MS" >/dev/null
	for w in 1 4 16 64; do
		measure "lat$w" "$BIN" restore --repo "$SYN" small:latest --disk 0 --to "$WORK/restored-small.img" --force --workers "$w"
		cmp "$WORK/small.img" "$WORK/restored-small.img" || die "restore with latency differs"
	done
	curl -s -X POST "http://127.0.0.1:$CPORT/__latency?ms=0" >/dev/null
	echo "#### A repository of $SYNTH_CHUNKS chunks"
	echo
	echo "\`bench/s3synth\` stored $SYNTH_CHUNKS distinct chunks in 10 points; \`small\` is a new 32 MiB disk (128 chunks of 256 KiB); the second gc ran after the oldest synthetic point was forgotten and removed $removed chunks (a removed chunk costs a rename aside — HEAD, COPY, DELETE —, a HEAD and a DELETE)."
	echo
	echo "| step | PUT | GET | HEAD | COPY | DELETE | LIST | total | per 1 000 chunks | wall s |" # counts
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for s in synth sverify sgc0 sbackupcold sbackupwarm sgc sbackupaftergc; do
		tot=$(field "$s" TOTAL)
		echo "| $s | $(field "$s" PUT) | $(field "$s" GET) | $(field "$s" HEAD) | $(field "$s" COPY) | $(field "$s" DELETE) | $(field "$s" LIST) | $tot | $(awk -v t="$tot" -v n="$SYNTH_CHUNKS" 'BEGIN { printf "%.1f", t * 1000 / n }') | ${T[$s]} |"
	done
	echo
	echo "Restore of \`small\` (32 MiB, 128 chunks) with $LATENCY_MS ms added to every request by the proxy (an object store's first-byte latency):"
	echo
	echo "| --workers | wall s | MiB/s | vs 1 worker |"
	echo "|---:|---:|---:|---:|"
	for w in 1 4 16 64; do
		echo "| $w | ${T[lat$w]} | $(mibps $((32 << 20)) "${T[lat$w]}") | $(ratio "${T[lat1]}" "${T[lat$w]}") |"
	done
	echo
fi
load_note
