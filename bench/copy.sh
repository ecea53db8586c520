#!/usr/bin/env bash
# Benchmark of backup copies over a link that drops (issue 14): a restore
# point is copied from a local repository to object storage (versitygw on
# loopback) through bench/cutproxy, which resets every open connection each
# time the link has carried about CUT bytes (both directions; each interval
# drawn from CUT/2 to 3·CUT/2 with a fixed seed). The bytes sent
# upstream are compared with those of the same copy over a link that never
# drops: resent = (up with cuts - up without) / up without.
# Prints a Markdown table for docs/performance.md on stdout.
#
#   bench/copy.sh                              # 128 MiB disk
#   SIZE=64M PAIRS="1MiB:256KiB" CUTS="4MiB" WORKERS="1 4" bench/copy.sh
#
# PAIRS are SOURCE:TARGET chunk sizes: a target with smaller chunks than
# the source gets each source chunk split into its size.
#
# The disk holds distinct compressible data (base64 of random bytes).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-128M}
PAIRS=${PAIRS:-256KiB:256KiB 1MiB:1MiB 1MiB:256KiB}
CUTS=${CUTS:-4MiB 8MiB 16MiB}
WORKERS=${WORKERS:-1 4}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}
SIZE_BYTES=$(to_bytes "$SIZE")
need jq jq
need curl curl

setup_workdir holdfast-copy
BIN=$WORK/holdfast
holdfast_binary "$BIN"
(cd "$REPO_ROOT" && go build -o "$WORK/cutproxy" ./bench/cutproxy)

start_versitygw
PPORT=$(free_port)
CPORT=$(free_port)
"$WORK/cutproxy" -listen "127.0.0.1:$PPORT" -control "127.0.0.1:$CPORT" -target "127.0.0.1:$VPORT" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
EXTRA_CLEANUP="kill $VGW_PID $PROXY_PID 2>/dev/null; wait 2>/dev/null"
for _ in $(seq 200); do port_busy "$VPORT" && port_busy "$CPORT" && break; sleep 0.1; done
DIRECT=s3+http://127.0.0.1:$VPORT/bench
VIA=s3+http://127.0.0.1:$PPORT/bench
"$BIN" repo init --repo "$DIRECT/init" >/dev/null # creates the bucket

log "making a $SIZE disk of distinct compressible data"
compressible_file "$WORK/disk.img" "$SIZE_BYTES"

setcut() { curl -sf -X POST "http://127.0.0.1:$CPORT/cut?bytes=$1" >/dev/null; }
reset() { curl -sf -X POST "http://127.0.0.1:$CPORT/reset" >/dev/null; }
stat() { curl -sf "http://127.0.0.1:$CPORT/stats" | jq -r ".$1"; }

# copyrun NAME SRC_CHUNK TARGET_CHUNK CUT_BYTES WORKERS: copy into a fresh
# prefix through the proxy; sets UP, CUTN, SECS, SENT
copyrun() {
	local name=$1 chunk=$2 tchunk=$3 cut=$4 w=$5
	"$BIN" repo init --repo "$DIRECT/$name" --chunk-size "$tchunk" >/dev/null
	setcut "$cut"
	reset
	local t0 t1
	t0=$(now)
	"$BIN" copy --from "$WORK/src-$chunk" --to "$VIA/$name" --workers "$w" --json >"$WORK/$name.json"
	t1=$(now)
	setcut 0
	UP=$(stat bytes_up) CUTN=$(stat cuts) SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	SENT=$(jq -r .bytes_sent "$WORK/$name.json")
	"$BIN" restore --repo "$DIRECT/$name" vm1:latest --disk 0 --to "$WORK/check.img" --force >/dev/null
	cmp "$WORK/disk.img" "$WORK/check.img" || die "$name: the copy restores differently"
}

ROWS=()
for pair in $PAIRS; do
	chunk=${pair%%:*} tchunk=${pair##*:}
	if [[ ! -d $WORK/src-$chunk ]]; then
		log "source repository with $chunk chunks"
		"$BIN" repo init --repo "$WORK/src-$chunk" --chunk-size "$chunk" >/dev/null
		"$BIN" backup --repo "$WORK/src-$chunk" --name vm1 "$WORK/disk.img" >/dev/null
	fi
	for w in $WORKERS; do
		log "copy $chunk to $tchunk, $w workers, no cuts"
		copyrun "base-$chunk-$tchunk-$w" "$chunk" "$tchunk" 0 "$w"
		base=$UP
		ROWS+=("| $chunk | $tchunk | $w | never | 0 | $(mib "$SENT") | $(mib "$UP") | 0.0 % | $SECS |")
		for cut in $CUTS; do
			log "copy $chunk to $tchunk, $w workers, link cut every $cut"
			copyrun "cut-$chunk-$tchunk-$w-$cut" "$chunk" "$tchunk" "$(to_bytes "$cut")" "$w"
			pct=$(awk -v u="$UP" -v b="$base" 'BEGIN { printf "%.1f", (u - b) * 100 / b }')
			ROWS+=("| $chunk | $tchunk | $w | $cut | $CUTN | $(mib "$SENT") | $(mib "$UP") | $pct % | $SECS |")
		done
	done
done

echo "### Backup copy over a link that drops"
echo
machine_line
echo
echo "\`SIZE=$SIZE PAIRS=\"$PAIRS\" CUTS=\"$CUTS\" WORKERS=\"$WORKERS\" bench/copy.sh\` — one $SIZE point of distinct compressible data copied from a local repository to versitygw on loopback through bench/cutproxy, which resets every open connection each time the link has carried about CUT bytes (each interval drawn from CUT/2 to 3·CUT/2, seeded, so that cuts do not fall in step with the 1 MiB or 256 KiB uploads). *sent* is the stored size of the chunks sent, *up* the bytes the link carried towards the server (requests, headers, retries), *resent* the extra bytes up compared with the same copy without cuts."
echo
echo "| source chunks | target chunks | workers | link cut every | cuts | sent MiB | up MiB | resent | wall s |"
echo "|---|---|---:|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo

