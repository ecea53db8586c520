#!/usr/bin/env bash
# Side-by-side benchmark of holdfast and restic on a realistic raw disk image.
# Prints a Markdown table for docs/performance.md on stdout; progress goes to
# stderr. See bench/README.md.
#
#   bench/run.sh                  # 2 GiB image, ~10 minutes on 2 cores
#   SIZE=512M bench/run.sh        # quick iteration
#   KEEP=1 BENCH_DIR=/var/tmp/hb bench/run.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-2G}
SEED=${SEED:-42}                        # seeds the 1 % change offsets
SRC_DIRS=${SRC_DIRS:-"/usr/share /usr/lib"}
DATA_PCT=${DATA_PCT:-45}                # real files, % of the image
RANDOM_PCT=${RANDOM_PCT:-15}            # incompressible file, % of the image
CHANGE_PCT=${CHANGE_PCT:-1}             # changed before the third backup
KEEP=${KEEP:-0}
export RESTIC_PASSWORD=${RESTIC_PASSWORD:-bench-password}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}

SIZE_BYTES=$(to_bytes "$SIZE")
((SIZE_BYTES >= 64 << 20)) || die "SIZE must be at least 64M"

# --- tools -----------------------------------------------------------------
need go golang-go
need restic restic
need sfdisk fdisk
need mkfs.ext4 e2fsprogs
need /usr/bin/time time
need cmp diffutils

# --- work dir ----------------------------------------------------------------
if [[ -n ${BENCH_DIR:-} ]]; then
	WORK=$BENCH_DIR
	mkdir -p "$WORK"
else
	WORK=$(mktemp -d /var/tmp/holdfast-bench.XXXXXX)
fi
WORK=$(cd "$WORK" && pwd)
cleanup() {
	local rc=$?
	if [[ $KEEP == 1 ]]; then
		log "KEEP=1: leaving $WORK"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export RESTIC_CACHE_DIR=$WORK/restic-cache
log "work dir $WORK, image size $SIZE ($SIZE_BYTES bytes)"

# Disk space: image + staging (~60 %) + restic restore (full) + holdfast
# restore (sparse) + two repositories (~60 % each).
need_kb=$((SIZE_BYTES * 42 / 10 / 1024))
avail_kb=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
((avail_kb > need_kb)) || die "need ~$((need_kb >> 20)) GiB free in $WORK, have $((avail_kb >> 20)) GiB"

HF=$WORK/holdfast
if [[ -n ${HOLDFAST_BIN:-} ]]; then
	log "using prebuilt $HOLDFAST_BIN (HOLDFAST_BIN)"
	cp "$HOLDFAST_BIN" "$HF"
else
	log "building holdfast"
	build_holdfast "$HF"
fi

# --- test image ------------------------------------------------------------
IMG=$WORK/disk.img
STAGE=$WORK/staging
build_image() {
	local data_budget=$((SIZE_BYTES * DATA_PCT / 100))
	local rand_bytes=$((SIZE_BYTES * RANDOM_PCT / 100))
	local list=$WORK/files.list total=0 count=0 sz path
	# A deterministic pseudo-random sample of the files, so the image holds a
	# realistic mix of small and large, text and binary files.
	log "selecting ~$((data_budget >> 20)) MiB of files from $SRC_DIRS"
	: >"$list"
	# shellcheck disable=SC2086 # SRC_DIRS is a list
	while IFS=$'\t' read -r -d '' sz path; do
		((total + sz <= data_budget)) || continue
		printf '%s\0' "${path#/}" >>"$list"
		total=$((total + sz))
		count=$((count + 1))
		((total < data_budget - (256 << 10))) || break
	done < <(find $SRC_DIRS -xdev -type f -readable -printf '%s\t%p\0' 2>/dev/null |
		LC_ALL=C sort -z -R --random-source=<(yes holdfast-bench))
	((total > data_budget / 2)) || die "only $total bytes of files found under $SRC_DIRS; set SRC_DIRS"
	DATA_FILES=$count DATA_BYTES=$total
	rm -rf "$STAGE"
	mkdir -p "$STAGE"
	tar -C / --null -T "$list" -cf - 2>/dev/null | tar -C "$STAGE" -xf -
	log "copied $count files ($((total >> 20)) MiB); adding $((rand_bytes >> 20)) MiB from /dev/urandom"
	head -c "$rand_bytes" /dev/urandom >"$STAGE/random.bin"
	RAND_BYTES=$rand_bytes

	rm -f "$IMG"
	truncate -s "$SIZE_BYTES" "$IMG"
	printf 'label: gpt\nstart=2048, type=linux\n' | sfdisk -q "$IMG"
	# The partition runs from 1 MiB to the last usable sector (the backup
	# GPT takes the last 33 sectors); use whole 4 KiB blocks below that.
	local fs_k=$(((SIZE_BYTES - (1 << 20) - 34 * 512) / 4096 * 4))
	log "mkfs.ext4 -d (${fs_k}K at offset 1 MiB)"
	mkfs.ext4 -q -F -d "$STAGE" -E offset=1048576 "$IMG" "${fs_k}K" >&2
	rm -rf "$STAGE" "$list"
	IMG_ALLOC=$(($(stat -c %b "$IMG") * 512))
	log "image: $((SIZE_BYTES >> 20)) MiB apparent, $((IMG_ALLOC >> 20)) MiB allocated"
}
build_image

# change_image: overwrite CHANGE_PCT % of the image with random 64 KiB
# blocks at random (seeded) 64 KiB-aligned offsets.
change_image() {
	local blocks=$((SIZE_BYTES * CHANGE_PCT / 100 / 65536)) max=$((SIZE_BYTES / 65536)) off
	log "changing $blocks random 64 KiB blocks ($CHANGE_PCT %)"
	while read -r off; do
		dd if=/dev/urandom of="$IMG" bs=64K count=1 seek="$off" conv=notrunc status=none
	done < <(awk -v n="$blocks" -v max="$max" -v seed="$SEED" \
		'BEGIN { srand(seed); for (i = 0; i < n; i++) print int(rand() * max) }')
	CHANGED_BLOCKS=$blocks
}

# settle: flush earlier writes (so no tool pays for another's dirty pages)
# and make sure the image is in the page cache for both tools alike.
settle() {
	sync
	cat "$IMG" >/dev/null
}

R_REPO=$WORK/restic-repo
H_REPO=$WORK/holdfast-repo
log "initialising repositories"
restic init --repo "$R_REPO" >"$WORK/restic-init.out" 2>&1 || { cat "$WORK/restic-init.out" >&2; die "restic init failed"; }
"$HF" repo init --repo "$H_REPO" >"$WORK/holdfast-init.out" 2>&1 || { cat "$WORK/holdfast-init.out" >&2; die "holdfast repo init failed"; }
H_INIT=$(cat "$WORK/holdfast-init.out")

# The image path is the same for all backups, so restic finds its parent
# snapshot (and skips the unchanged file by mtime/size/inode, as it would in
# real use).
settle; measure r_full   restic --repo "$R_REPO" backup "$IMG"
settle; measure h_full   "$HF" backup --repo "$H_REPO" --name vm1 --json "$IMG"
settle; measure r_same   restic --repo "$R_REPO" backup "$IMG"
settle; measure h_same   "$HF" backup --repo "$H_REPO" --name vm1 --json "$IMG"
change_image
settle; measure r_incr   restic --repo "$R_REPO" backup "$IMG"
settle; measure h_incr   "$HF" backup --repo "$H_REPO" --name vm1 --json "$IMG"
sync
R_SIZE=$(du -sb "$R_REPO" | cut -f1)
H_SIZE=$(du -sb "$H_REPO" | cut -f1)

# Restores. holdfast fsyncs the restored file before it exits; restic 0.14
# does not, so restic's row includes a `sync -f` right after it, timed too.
R_OUT=$WORK/restore-restic
H_OUT=$WORK/restore-holdfast.img
settle; measure r_restore restic --repo "$R_REPO" restore latest --target "$R_OUT"
measure r_sync sync -f "$R_OUT"
R_RESTORED=$R_OUT$IMG
cmp "$IMG" "$R_RESTORED" || die "restic restore differs from the image"
rm -rf "$R_OUT"
settle; measure h_restore "$HF" restore --repo "$H_REPO" latest --disk 0 --to "$H_OUT"
cmp "$IMG" "$H_OUT" || die "holdfast restore differs from the image"
H_OUT_ALLOC=$(($(stat -c %b "$H_OUT") * 512))
rm -f "$H_OUT"
log "both restores verified with cmp"

# --- report ------------------------------------------------------------------
json_field() { sed -n "s/.*\"$2\": *\\([0-9.]*\\).*/\\1/p" "$WORK/$1.out" | head -n 1; }
R_RESTORE_TOTAL=$(awk -v a="${T[r_restore]}" -v b="${T[r_sync]}" 'BEGIN { printf "%.2f", a + b }')
size_ratio=$(ratio "$H_SIZE" "$R_SIZE")

row_time() { # label restic holdfast [max-ratio]
	local label=$1 r=$2 h=$3 limit=${4:-}
	local q target="—" res="—"
	q=$(ratio "$h" "$r")
	if [[ -n $limit ]]; then target="≤ $limit"; res=$(passfail le "$q" "$limit"); fi
	printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$r" "$h" "$q" "$target" "$res"
}
row_rss() { # label restic-KiB holdfast-KiB
	local r h
	r=$(kib2mib "$2"); h=$(kib2mib "$3")
	printf '| %s | %s | %s | %s | < 512 MiB | %s |\n' "$1" "$r" "$h" "$(ratio "$3" "$2")" \
		"$(passfail lt "$3" $((512 * 1024)))"
}
in_band() { awk -v q="$1" 'BEGIN { exit !(q >= 0.9 && q <= 1.1) }'; }

cat <<EOF
### Raw image, $(mib "$SIZE_BYTES") MiB — holdfast vs restic

Image: GPT + ext4, $DATA_FILES files ($(mib "$DATA_BYTES") MiB) from \`$SRC_DIRS\`,
$(mib "$RAND_BYTES") MiB incompressible file, rest free ($(mib "$IMG_ALLOC") MiB allocated in the sparse image).
Change step: $CHANGED_BLOCKS random 64 KiB blocks ($CHANGE_PCT % of the image).
Machine: $(machine_line). Versions: $(restic version | awk '{ print $1, $2 }'),
$(holdfast_version_line), repository ${H_INIT#created repository * at * }.
Both repositories encrypted; restic compression \`auto\`. Page cache warm, no caches dropped.
Command: \`SIZE=$SIZE bench/run.sh\`

| Metric | restic | holdfast | holdfast / restic | Target | Result |
| --- | ---: | ---: | ---: | --- | --- |
EOF
row_time "Full backup (s)" "${T[r_full]}" "${T[h_full]}" 0.5
row_time "Unchanged re-backup (s)" "${T[r_same]}" "${T[h_same]}"
row_time "Backup after $CHANGE_PCT % change (s)" "${T[r_incr]}" "${T[h_incr]}"
row_time "Restore latest (s) ¹" "$R_RESTORE_TOTAL" "${T[h_restore]}" 0.5
printf '| Repository size after 3 backups (MiB) | %s | %s | %s | ±10 %% | %s |\n' \
	"$(mib "$R_SIZE")" "$(mib "$H_SIZE")" "$size_ratio" "$(passfail in_band "$size_ratio")"
row_rss "Peak RSS, full backup (MiB)" "${RSS[r_full]}" "${RSS[h_full]}"
row_rss "Peak RSS, unchanged re-backup (MiB)" "${RSS[r_same]}" "${RSS[h_same]}"
row_rss "Peak RSS, backup after change (MiB)" "${RSS[r_incr]}" "${RSS[h_incr]}"
row_rss "Peak RSS, restore (MiB)" "${RSS[r_restore]}" "${RSS[h_restore]}"
cat <<EOF

¹ holdfast fsyncs the restored image before it exits and writes zero chunks as holes
($(mib "$H_OUT_ALLOC") MiB allocated); restic 0.14 writes every byte and does not sync, so its time is
\`restic restore\` (${T[r_restore]} s) plus a \`sync -f\` right after it (${T[r_sync]} s).
Restic skips the unchanged re-backup without reading the image (same mtime, size and inode);
holdfast reads and hashes every allocated range.
holdfast new/stored bytes: full $(mib "$(json_field h_full bytes_new)")/$(mib "$(json_field h_full bytes_stored)") MiB,
unchanged $(mib "$(json_field h_same bytes_new)")/$(mib "$(json_field h_same bytes_stored)") MiB,
after change $(mib "$(json_field h_incr bytes_new)")/$(mib "$(json_field h_incr bytes_stored)") MiB.
EOF
