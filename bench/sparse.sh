#!/usr/bin/env bash
# Sparse-disk scenario: the same 1 GiB of data scattered over sparse raw
# images of different virtual sizes (default 64 GiB and 4 TiB), backed up and
# restored by holdfast alone. Shows that time, peak RSS and the size of the
# fixed index follow the data, not the disk size. Prints a Markdown table on
# stdout; progress goes to stderr. See bench/README.md.
#
#   bench/sparse.sh
#   DISK_SIZES="64G 1T 4T" DATA=2G bench/sparse.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

DISK_SIZES=${DISK_SIZES:-"64G 4T"}
DATA=${DATA:-1G}                 # data written into each image
EXTENTS=${EXTENTS:-8}            # ... as this many equal extents, spread out
SRC_DIRS=${SRC_DIRS:-"/usr/share /usr/lib"}   # compressible extents come from here
KEEP=${KEEP:-0}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}

DATA_BYTES=$(to_bytes "$DATA")
EXT_MIB=$((DATA_BYTES / EXTENTS >> 20))
((EXT_MIB >= 1)) || die "DATA / EXTENTS must be at least 1 MiB"

need go golang-go
need /usr/bin/time time
need cmp diffutils

setup_workdir holdfast-sparse
log "work dir $WORK; $EXTENTS extents of $EXT_MIB MiB in sparse images of $DISK_SIZES"

# Payloads, one image and one restored copy (data each), a repository per
# disk size (≤ data each).
n_sizes=$(wc -w <<<"$DISK_SIZES")
need_kb=$((DATA_BYTES * (35 + 10 * n_sizes) / 10 / 1024))
need_space "$need_kb"

HF=$WORK/holdfast
holdfast_binary "$HF"

# Extent payloads, made once and written into every image at the same
# relative positions: even extents random (incompressible), odd extents a
# tar stream of real files (compressible, no two extents alike).
log "making $EXTENTS extent payloads"
n_text=$((EXTENTS / 2))
# shellcheck disable=SC2086 # SRC_DIRS is a list
tar -C / -cf - $SRC_DIRS 2>/dev/null | head -c $((n_text * EXT_MIB << 20)) >"$WORK/text.bin" || true
(($(stat -c %s "$WORK/text.bin") == n_text * EXT_MIB << 20)) || die "not enough files under $SRC_DIRS"
for ((i = 0; i < EXTENTS; i++)); do
	if ((i % 2 == 0)); then
		head -c $((EXT_MIB << 20)) /dev/urandom >"$WORK/ext$i.bin"
	else
		# shellcheck disable=SC2017 # i / 2 truncates on purpose
		dd if="$WORK/text.bin" of="$WORK/ext$i.bin" bs=1M skip=$((i / 2 * EXT_MIB)) count="$EXT_MIB" status=none
	fi
done
rm -f "$WORK/text.bin"

# ext_off SIZE I: MiB offset of extent I, centred in the I-th of EXTENTS
# equal slices of the disk.
ext_off() { echo $((($1 >> 20) * (2 * $2 + 1) / (2 * EXTENTS))); }

declare -A IDX=() STORED=() ALLOC=()
for size in $DISK_SIZES; do
	sb=$(to_bytes "$size")
	((sb >> 20 >= 2 * EXTENTS * EXT_MIB)) || die "disk size $size too small for $DATA of data"
	img=$WORK/sparse-$size.img repo=$WORK/repo-$size out=$WORK/restored-$size.img
	rm -f "$img"
	truncate -s "$sb" "$img"
	for ((i = 0; i < EXTENTS; i++)); do
		dd if="$WORK/ext$i.bin" of="$img" bs=1M seek="$(ext_off "$sb" "$i")" conv=notrunc status=none
	done
	log "$size image: $(($(stat -c %b "$img") * 512 >> 20)) MiB allocated"
	"$HF" repo init --repo "$repo" >/dev/null
	sync
	cat "$WORK"/ext*.bin >/dev/null
	measure "b_$size" "$HF" backup --repo "$repo" --name sparse --json "$img"
	sync
	IDX[$size]=$(find "$repo/indexes" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
	STORED[$size]=$(du -sb "$repo" | cut -f1)
	sync
	measure "r_$size" "$HF" restore --repo "$repo" latest --disk 0 --to "$out"
	# Verify: same apparent size, every extent equal, nothing else allocated.
	(($(stat -c %s "$out") == sb)) || die "restored $size image has the wrong size"
	for ((i = 0; i < EXTENTS; i++)); do
		off=$(($(ext_off "$sb" "$i") << 20))
		cmp -n $((EXT_MIB << 20)) -i "0:$off" "$WORK/ext$i.bin" "$out" ||
			die "restored $size image differs in extent $i"
	done
	ALLOC[$size]=$(($(stat -c %b "$out") * 512))
	((ALLOC[$size] <= DATA_BYTES + (EXTENTS * 2 << 20))) ||
		die "restored $size image has $((ALLOC[$size] >> 20)) MiB allocated, expected ~$((DATA_BYTES >> 20)) MiB"
	log "$size: restore verified ($((ALLOC[$size] >> 20)) MiB allocated)"
	# Keep the repository until the end: deleting its files now would slow
	# down the next backup's inode allocation on some file systems.
	rm -f "$img" "$out"
done

first=${DISK_SIZES%% *}
last=${DISK_SIZES##* }
cat <<EOF
### Sparse disks: $(mib "$DATA_BYTES") MiB of data in $EXTENTS extents, holdfast only

Half of the extents random, half a tar stream of \`$SRC_DIRS\`; the same payload at the same
relative offsets in every image. Machine: $(machine_line). $(holdfast_version_line).
Command: \`DISK_SIZES="$DISK_SIZES" DATA=$DATA bench/sparse.sh\`. Index size: the files under the
repository's \`indexes/\` (encrypted, compressed).

| Disk size | Backup (s) | Backup CPU (s) | Peak RSS backup (MiB) | Index size (bytes) | Repository (MiB) | Restore (s) | Restore CPU (s) | Peak RSS restore (MiB) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
EOF
for size in $DISK_SIZES; do
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$size" "${T[b_$size]}" "${CPU[b_$size]}" \
		"$(kib2mib "${RSS[b_$size]}")" "${IDX[$size]}" "$(mib "${STORED[$size]}")" "${T[r_$size]}" "${CPU[r_$size]}" \
		"$(kib2mib "${RSS[r_$size]}")"
done
echo
load_note "${!OTHER[@]}"
if [[ $first != "$last" ]]; then
	# "Does not grow": the largest disk may use at most 25 % more than the
	# smallest (plus 8 MiB of slack for RSS noise), and stay under 512 MiB.
	grow_ok() { awk -v a="$1" -v b="$2" -v slack="$3" 'BEGIN { exit !(b <= a * 1.25 + slack) }'; }
	max_rss=0
	for k in "b_$last" "r_$last"; do
		if ((RSS[$k] > max_rss)); then max_rss=${RSS[$k]}; fi
	done
	cat <<EOF

| Check ($last vs $first) | $first | $last | Ratio | Result |
| --- | ---: | ---: | ---: | --- |
| Backup peak RSS (MiB) | $(kib2mib "${RSS[b_$first]}") | $(kib2mib "${RSS[b_$last]}") | $(ratio "${RSS[b_$last]}" "${RSS[b_$first]}") | $(passfail grow_ok "${RSS[b_$first]}" "${RSS[b_$last]}" 8192) |
| Restore peak RSS (MiB) | $(kib2mib "${RSS[r_$first]}") | $(kib2mib "${RSS[r_$last]}") | $(ratio "${RSS[r_$last]}" "${RSS[r_$first]}") | $(passfail grow_ok "${RSS[r_$first]}" "${RSS[r_$last]}" 8192) |
| Index size (bytes) | ${IDX[$first]} | ${IDX[$last]} | $(ratio "${IDX[$last]}" "${IDX[$first]}") | $(passfail grow_ok "${IDX[$first]}" "${IDX[$last]}" 64) |
| Backup time (s) | ${T[b_$first]} | ${T[b_$last]} | $(ratio "${T[b_$last]}" "${T[b_$first]}") | $(passfail grow_ok "${T[b_$first]}" "${T[b_$last]}" 1) |
| Backup CPU (s) | ${CPU[b_$first]} | ${CPU[b_$last]} | $(ratio "${CPU[b_$last]}" "${CPU[b_$first]}") | $(passfail grow_ok "${CPU[b_$first]}" "${CPU[b_$last]}" 1) |
| Restore time (s) | ${T[r_$first]} | ${T[r_$last]} | $(ratio "${T[r_$last]}" "${T[r_$first]}") | $(passfail grow_ok "${T[r_$first]}" "${T[r_$last]}" 1) |
| Peak RSS < 512 MiB ($last) | | $(kib2mib "$max_rss") | | $(passfail lt "$max_rss" $((512 * 1024))) |
EOF
fi
