#!/usr/bin/env bash
# Memory of `holdfast copy` (issue 14): a synthetic source repository per
# size in SIZES (bench/scalegen: one point whose disk has SIZE non-zero
# chunks of 256 KiB geometry, each a distinct 64-byte chunk), copied into a
# new local repository; wall time and peak RSS from /usr/bin/time. Prints a
# Markdown table on stdout; progress on stderr. See docs/performance.md,
# "Backup copy over a link that drops", "Memory".
#
#   bench/copymem.sh                               # 200k 800k
#   SIZES="100000" bench/copymem.sh
#   HOLDFAST_BIN=/tmp/holdfast-old bench/copymem.sh  # measure another build
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZES=${SIZES:-"200000 800000"}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}

need go golang-go
need /usr/bin/time time
need jq jq

setup_workdir holdfast-copymem
HF=$WORK/holdfast
holdfast_binary "$HF"
log "building scalegen"
(cd "$REPO_ROOT" && go build -o "$WORK/scalegen" ./bench/scalegen)

echo "| non-zero chunks | wall s | peak RSS MiB |"
echo "|---:|---:|---:|"
for n in $SIZES; do
	rm -rf "$WORK/src" "$WORK/dst"
	log "making a source point of $n chunks"
	# -points 1: the point references half of -chunks
	"$WORK/scalegen" -repo "$WORK/src" -chunks $((2 * n)) -points 1 >"$WORK/gen-$n.json"
	"$HF" repo init --repo "$WORK/dst" >/dev/null
	measure "copy-$n" "$HF" copy --from "$WORK/src" --to "$WORK/dst" --json
	sent=$(jq -r .chunks_sent "$WORK/copy-$n.out")
	[[ $sent == "$n" ]] || die "copy of $n chunks sent $sent"
	echo "| $n | ${T[copy-$n]} | $((RSS[copy-$n] / 1024)) |"
done
