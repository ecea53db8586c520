#!/usr/bin/env bash
# Restore benchmark: holdfast builds side by side (for example before and
# after a change to the read path) against `cp --sparse=always` + sync, on
# one ext4 image backed up once. Prints a Markdown table on stdout; progress
# goes to stderr. See bench/README.md.
#
#   HF_BINS="before=/tmp/hf-old after=/tmp/hf-new" bench/restore.sh
#   SIZE=1G REPEAT=5 bench/restore.sh     # the working tree's build only
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-2G}
SRC_DIRS=${SRC_DIRS:-"/usr/share /usr/lib"}
DATA_PCT=${DATA_PCT:-22}   # real files, % of the image
RANDOM_PCT=${RANDOM_PCT:-15} # incompressible file, % of the image
REPEAT=${REPEAT:-3}        # rounds; the table shows the best time and the highest RSS
KEEP=${KEEP:-0}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}
SIZE_BYTES=$(to_bytes "$SIZE")

need sfdisk fdisk
need mkfs.ext4 e2fsprogs
need /usr/bin/time time
need cmp diffutils

setup_workdir holdfast-restore-bench
need_space $((SIZE_BYTES * 4 / 1024))

# Builds to compare: name=path pairs; default, the working tree's build.
declare -a NAMES BINS
if [[ -n ${HF_BINS:-} ]]; then
	for nb in $HF_BINS; do
		NAMES+=("${nb%%=*}")
		BINS+=("${nb#*=}")
	done
else
	build_holdfast "$WORK/holdfast"
	NAMES=(holdfast)
	BINS=("$WORK/holdfast")
fi

# The image: a GPT, an ext4 file system at 1 MiB holding a deterministic
# sample of SRC_DIRS and a random file; free space stays holes.
IMG=$WORK/disk.img
STAGE=$WORK/staging
mkdir -p "$STAGE"
budget=$((SIZE_BYTES * DATA_PCT / 100)) total=0
# shellcheck disable=SC2086 # SRC_DIRS is a list
while IFS=$'\t' read -r -d '' sz path; do
	((total + sz <= budget)) || continue
	printf '%s\0' "${path#/}"
	total=$((total + sz))
	((total < budget - (256 << 10))) || break
done < <(find $SRC_DIRS -xdev -type f -readable -printf '%s\t%p\0' 2>/dev/null |
	LC_ALL=C sort -z -R --random-source=<(yes holdfast-bench)) |
	tar -C / --null -T - -cf - 2>/dev/null | tar -C "$STAGE" -xf -
head -c $((SIZE_BYTES * RANDOM_PCT / 100)) /dev/urandom >"$STAGE/random.bin"
truncate -s "$SIZE_BYTES" "$IMG"
printf 'label: gpt\nstart=2048, type=linux\n' | sfdisk -q "$IMG"
mkfs.ext4 -q -F -d "$STAGE" -E offset=1048576 "$IMG" "$(((SIZE_BYTES - (1 << 20) - 34 * 512) / 4096 * 4))K" >&2
rm -rf "$STAGE"
ALLOC=$(($(stat -c %b "$IMG") * 512))
log "image: $((SIZE_BYTES >> 20)) MiB, $((ALLOC >> 20)) MiB allocated"

REPO=$WORK/repo
"${BINS[0]}" repo init --repo "$REPO" >&2
"${BINS[0]}" backup --repo "$REPO" --name vm1 "$IMG" >&2
sync
cat "$IMG" >/dev/null

declare -A T RSS CPU OTHER
for ((n = 1; n <= REPEAT; n++)); do
	for i in "${!NAMES[@]}"; do
		out=$WORK/out.img
		rm -f "$out"
		sync
		measure "${NAMES[$i]}.$n" "${BINS[$i]}" restore --repo "$REPO" latest --disk 0 --to "$out"
		cmp "$IMG" "$out" || die "${NAMES[$i]}: restore differs from the image"
		log "  restored image: $(($(stat -c %b "$out") * 512 >> 20)) MiB allocated"
	done
	rm -f "$WORK/out.img"
	sync
	measure "cp.$n" sh -c 'cp --sparse=always "$1" "$2" && sync -f "$2"' sh "$IMG" "$WORK/out.img"
done

best() { # name: best wall time, median CPU time and highest RSS (MiB) over the rounds
	local t='' r=0 n c
	for ((n = 1; n <= REPEAT; n++)); do
		if [[ -z $t ]] || lt "${T[$1.$n]}" "$t"; then t=${T[$1.$n]}; fi
		((RSS[$1.$n] > r)) && r=${RSS[$1.$n]}
	done
	c=$(for ((n = 1; n <= REPEAT; n++)); do echo "${CPU[$1.$n]}"; done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	echo "$t $c $((r / 1024))"
}
read -r cp_t cp_c cp_rss < <(best cp)
echo "### Restore, $((SIZE_BYTES >> 20)) MiB ext4 image, $((ALLOC >> 20)) MiB allocated (best of $REPEAT)"
echo
echo "| build | time (s) | × cp --sparse + sync | CPU (s, median) | peak RSS (MiB) |"
echo "| --- | ---: | ---: | ---: | ---: |"
for name in "${NAMES[@]}"; do
	read -r t c r < <(best "$name")
	echo "| $name | $t | $(ratio "$t" "$cp_t") | $c | $r |"
done
echo "| cp --sparse=always + sync | $cp_t | 1.00 | $cp_c | $cp_rss |"
