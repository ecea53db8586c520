#!/usr/bin/env bash
# What Object Lock costs in S3 requests (issue 14): the same backups, gc and
# recover on a plain repository and on one created with --object-lock, on
# versitygw behind bench/s3count (requests counted by operation). A reused
# chunk costs a HEAD on a locked repository (its retention is checked, and
# extended only when less than 1.25 × DAYS remain) where an unlocked one
# copies the chunk onto itself (COPY) to refresh its time for gc.
# Prints a Markdown table for docs/performance.md on stdout.
#
#   bench/objlock.sh                  # 256 MiB disk, 1 MiB chunks, 30 days
#   SIZE=1G DAYS=7 bench/objlock.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-256M}
CHUNK=${CHUNK:-1MiB}
DAYS=${DAYS:-30}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}
SIZE_BYTES=$(to_bytes "$SIZE")
need jq jq
need base64 coreutils

setup_workdir holdfast-objlock
BIN=$WORK/holdfast
holdfast_binary "$BIN"
(cd "$REPO_ROOT" && go build -o "$WORK/s3count" ./bench/s3count)

start_versitygw
CPORT=$(free_port)
"$WORK/s3count" -listen "127.0.0.1:$CPORT" -target "http://127.0.0.1:$VPORT" >"$WORK/count.log" 2>&1 &
COUNT_PID=$!
EXTRA_CLEANUP="kill $VGW_PID $COUNT_PID 2>/dev/null; wait 2>/dev/null"
for _ in $(seq 200); do port_busy "$VPORT" && port_busy "$CPORT" && break; sleep 0.1; done

log "making a $SIZE disk of distinct compressible data"
compressible_file "$WORK/disk.img" "$SIZE_BYTES"
CHUNKS=$(( (SIZE_BYTES + $(to_bytes "$CHUNK") - 1) / $(to_bytes "$CHUNK") ))

reset() { curl -s -X POST "http://127.0.0.1:$CPORT/__counts/reset" >/dev/null; }
declare -A REQ=()
counted() { # NAME CMD...
	local name=$1; shift
	reset
	measure "$name" "$@"
	REQ[$name]=$(curl -s "http://127.0.0.1:$CPORT/__counts")
}
field() { jq -r ".${2} // 0" <<<"${REQ[$1]}"; }

for kind in plain locked; do
	S3=s3+http://127.0.0.1:$CPORT/$kind/repo
	lock=()
	[[ $kind == locked ]] && lock=(--object-lock "$DAYS")
	counted "$kind-init" "$BIN" repo init --repo "$S3" --chunk-size "$CHUNK" "${lock[@]}"
	counted "$kind-full" "$BIN" backup --repo "$S3" --name vm1 --json "$WORK/disk.img"
	counted "$kind-again" "$BIN" backup --repo "$S3" --name vm1 --json "$WORK/disk.img"
	counted "$kind-gc" "$BIN" gc --repo "$S3" --grace 0s --json
	counted "$kind-recover" "$BIN" repo recover --repo "$S3" --json
done

echo "### Object Lock: requests per command"
echo
machine_line
echo
echo "\`SIZE=$SIZE CHUNK=$CHUNK DAYS=$DAYS bench/objlock.sh\` — $CHUNKS chunks, versitygw on loopback behind a counting proxy; \`again\` backs up the unchanged disk (every chunk reused)."
echo
echo "| step | repository | PUT | GET | HEAD | COPY | DELETE | LIST | total | wall s |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for s in init full again gc recover; do
	for kind in plain locked; do
		n=$kind-$s
		echo "| $s | $kind | $(field "$n" PUT) | $(field "$n" GET) | $(field "$n" HEAD) | $(field "$n" COPY) | $(field "$n" DELETE) | $(field "$n" LIST) | $(field "$n" TOTAL) | ${T[$n]} |"
	done
done
echo
load_note
