#!/usr/bin/env bash
# Scale scenario (issue 14): synthetic repositories of SIZES chunks made by
# bench/scalegen (10 points of one VM, each referencing half the chunks,
# neighbours sharing most), then per size: `gc --dry-run` (cold cache, then
# warm), `verify` (metadata), `points`, a backup of a new 1 GiB disk, a
# backup of a disk with MANY non-zero chunks, `forget --keep-last 9` and a
# real `gc --grace 0` (cold) that sweeps the forgotten point's chunks.
# Wall time and peak RSS from /usr/bin/time -v. Prints a Markdown table on
# stdout; progress on stderr. See bench/README.md and docs/performance.md.
#
#   bench/scale.sh                        # 100k 1M 3M
#   SIZES="100000" MANY=100000 bench/scale.sh
#   HOLDFAST_BIN=/tmp/holdfast-old bench/scale.sh   # measure another build
#
# As root, the repositories go on an ext4 image with inline_data mounted
# through a loop device (FS_SIZE), so 3 M tiny chunk files take a few GiB
# instead of 4 KiB each; without root (or LOOP=0) they go in the work dir.
# Cold cache needs root (/proc/sys/vm/drop_caches); otherwise it says so.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZES=${SIZES:-"100000 1000000 3000000"}
POINTS=${POINTS:-10}
MANY=${MANY:-100000}          # non-zero chunks of the "many chunks" disk
NEW_DISK=${NEW_DISK:-1G}      # the new disk backed up into each repository
CHUNK_SIZE=${CHUNK_SIZE:-262144}
FS_SIZE=${FS_SIZE:-12G}
LOOP=${LOOP:-$([[ $(id -u) -eq 0 ]] && echo 1 || echo 0)}
KEEP=${KEEP:-0}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}

need go golang-go
need /usr/bin/time time

setup_workdir holdfast-scale
HF=$WORK/holdfast
holdfast_binary "$HF"
log "building scalegen"
(cd "$REPO_ROOT" && go build -o "$WORK/scalegen" ./bench/scalegen)

FS=$WORK
LOOPDEV=
cleanup_loop() {
	if [[ -n $LOOPDEV ]]; then
		umount "$WORK/fs" 2>/dev/null || true
		losetup -d "$LOOPDEV" 2>/dev/null || true
	fi
}
EXTRA_CLEANUP=cleanup_loop
if [[ $LOOP == 1 ]]; then
	truncate -s "$FS_SIZE" "$WORK/fs.img"
	mkfs.ext4 -q -F -O inline_data -I 512 -N 4500000 "$WORK/fs.img"
	LOOPDEV=$(losetup --find --show "$WORK/fs.img")
	mkdir -p "$WORK/fs"
	mount "$LOOPDEV" "$WORK/fs"
	FS=$WORK/fs
	log "repositories on ext4 (inline_data) at $FS via $LOOPDEV"
fi

COLD=0
if [[ -w /proc/sys/vm/drop_caches ]]; then COLD=1; else log "cannot drop caches (not root): every figure is warm"; fi
drop_caches() {
	if ((COLD)); then sync; echo 3 >/proc/sys/vm/drop_caches; fi
}

# measure LABEL CMD...: run CMD under /usr/bin/time -v; sets SECS and RSS_MIB.
measure() {
	local label=$1
	shift
	local t=$WORK/time.$$
	if ! /usr/bin/time -v "$@" >"$WORK/out.$$" 2>"$t"; then
		cat "$WORK/out.$$" "$t" >&2
		die "$label failed"
	fi
	SECS=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$t")
	RSS_MIB=$(awk -F': ' '/Maximum resident set size/ {printf "%d", $2/1024}' "$t")
	log "$label: ${SECS} s, ${RSS_MIB} MiB"
}

need_space $((MANY * 4 + (LOOP ? 0 : 4) * 3000000 + 2 * 1024 * 1024))
log "making the new ${NEW_DISK} disk and the ${MANY}-chunk sparse disk"
NEW_CHUNKS=$(($(to_bytes "$NEW_DISK") / CHUNK_SIZE))
"$WORK/scalegen" -disk "$WORK/new.img" -dense -chunks "$NEW_CHUNKS" -chunk-size "$CHUNK_SIZE" -seed 7
"$WORK/scalegen" -disk "$WORK/many.img" -chunks "$MANY" -chunk-size "$CHUNK_SIZE" -seed 8

echo "| chunks | generate | \`gc --dry-run\` cold | warm | \`verify\` | \`points\` | new ${NEW_DISK} backup | ${MANY}-chunk disk backup | \`forget\` | \`gc\` cold (removed) | peak RSS gc / verify / many-chunk backup |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in $SIZES; do
	R=$FS/r$n
	rm -rf "$R"
	log "generating $n chunks, $POINTS points"
	measure "generate $n" "$WORK/scalegen" -repo "$R" -chunks "$n" -points "$POINTS" -chunk-size "$CHUNK_SIZE"
	gen=$SECS
	drop_caches
	measure "gc --dry-run (cold)" "$HF" gc --repo "$R" --dry-run --grace 0
	gcc=$SECS gcrss=$RSS_MIB
	measure "gc --dry-run (warm)" "$HF" gc --repo "$R" --dry-run --grace 0
	gcw=$SECS gcrss=$((RSS_MIB > gcrss ? RSS_MIB : gcrss))
	measure "verify" "$HF" verify --repo "$R"
	ver=$SECS verrss=$RSS_MIB
	measure "points" "$HF" points --repo "$R"
	pts=$SECS
	measure "backup new disk" "$HF" backup --repo "$R" --name new --format raw "$WORK/new.img"
	bnew=$SECS
	measure "backup many-chunk disk" "$HF" backup --repo "$R" --name many --format raw "$WORK/many.img"
	bmany=$SECS bmanyrss=$RSS_MIB
	measure "forget" "$HF" forget --repo "$R" --vm scale --keep-last $((POINTS - 1))
	fgt=$SECS
	drop_caches
	measure "gc (cold)" "$HF" gc --repo "$R" --grace 0 --json
	gcr=$SECS gcrss=$((RSS_MIB > gcrss ? RSS_MIB : gcrss))
	removed=$(grep -o '"removed_chunks": *[0-9]*' "$WORK/out.$$" | grep -o '[0-9]*$' || echo "?")
	echo "| $n | $gen s | $gcc s | $gcw s | $ver s | $pts s | $bnew s | $bmany s | $fgt s | $gcr s ($removed) | $gcrss / $verrss / $bmanyrss MiB |"
	((KEEP)) || rm -rf "$R"
done
