#!/usr/bin/env bash
# Side-by-side benchmark of holdfast and restic on a realistic raw disk image.
# Prints a Markdown table for docs/performance.md on stdout; progress goes to
# stderr. See bench/README.md.
#
#   bench/run.sh                  # 2 GiB image, 3 rounds: ~3 min on an idle 2-core machine
#   SIZE=512M REPEAT=1 bench/run.sh   # quick iteration
#   WAIT_IDLE=120 bench/run.sh    # shared machine: wait for quiet before each step
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
REPEAT=${REPEAT:-3}                     # rounds; the table shows the best time
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
setup_workdir holdfast-bench
log "work dir $WORK, image size $SIZE ($SIZE_BYTES bytes)"

# Disk space: pristine image + working copy (~65 % each) + staging (~60 %) +
# restic restore (100 %) + holdfast restore (~65 %) + two repositories per
# round (~75 % together).
need_kb=$((SIZE_BYTES * (400 + 75 * REPEAT) / 100 / 1024))
need_space "$need_kb"

HF=$WORK/holdfast
holdfast_binary "$HF"

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
	# shellcheck disable=SC2017 # rounds down to whole 4 KiB blocks
	local fs_k=$(((SIZE_BYTES - (1 << 20) - 34 * 512) / 4096 * 4))
	log "mkfs.ext4 -d (${fs_k}K at offset 1 MiB)"
	mkfs.ext4 -q -F -d "$STAGE" -E offset=1048576 "$IMG" "${fs_k}K" >&2
	# The staged files are left for the final clean-up (see round); only the
	# big random file goes now.
	rm -f "$STAGE/random.bin" "$list"
	IMG_ALLOC=$(($(stat -c %b "$IMG") * 512))
	log "image: $((SIZE_BYTES >> 20)) MiB apparent, $((IMG_ALLOC >> 20)) MiB allocated"
}
build_image
PRISTINE=$WORK/pristine.img
mv "$IMG" "$PRISTINE"

# change_image: overwrite CHANGE_PCT % of the image with random 64 KiB
# blocks at random (seeded, so every round changes the same places) 64 KiB-
# aligned offsets.
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

# round N: fresh repositories and a fresh copy of the image, then the whole
# sequence. The image path is the same for all backups of a round, so restic
# finds its parent snapshot (and skips the unchanged file by mtime, size and
# inode, as it would in real use).
round() {
	local n=$1
	# Repositories of earlier rounds stay until the end: deleting thousands
	# of files just before a backup slows down the inode allocation of the
	# next one on some file systems (ext4 without a journal skips recently
	# freed inodes), which would penalise holdfast's one-file-per-chunk
	# layout far more than restic's pack files.
	local r_repo=$WORK/round-$n/restic-repo h_repo=$WORK/round-$n/holdfast-repo
	local r_out=$WORK/restore-restic h_out=$WORK/restore-holdfast.img
	log "=== round $n of $REPEAT"
	rm -rf "$WORK/round-$n" "$r_out" "$h_out" "$IMG"
	mkdir -p "$WORK/round-$n"
	export RESTIC_CACHE_DIR=$WORK/round-$n/restic-cache
	cp --sparse=always "$PRISTINE" "$IMG"
	restic init --repo "$r_repo" >"$WORK/restic-init.out" 2>&1 ||
		{ cat "$WORK/restic-init.out" >&2; die "restic init failed"; }
	"$HF" repo init --repo "$h_repo" >"$WORK/holdfast-init.out" 2>&1 ||
		{ cat "$WORK/holdfast-init.out" >&2; die "holdfast repo init failed"; }
	H_INIT=$(cat "$WORK/holdfast-init.out")

	settle; measure "r_full.$n"  restic --repo "$r_repo" backup "$IMG"
	settle; measure "h_full.$n"  "$HF" backup --repo "$h_repo" --name vm1 --json "$IMG"
	settle; measure "r_same.$n"  restic --repo "$r_repo" backup "$IMG"
	settle; measure "h_same.$n"  "$HF" backup --repo "$h_repo" --name vm1 --json "$IMG"
	change_image
	settle; measure "r_incr.$n"  restic --repo "$r_repo" backup "$IMG"
	settle; measure "h_incr.$n"  "$HF" backup --repo "$h_repo" --name vm1 --json "$IMG"
	sync
	R_SIZE=$(du -sb "$r_repo" | cut -f1)
	H_SIZE=$(du -sb "$h_repo" | cut -f1)

	# holdfast fsyncs the restored file before it exits; restic 0.14 does
	# not, so restic's restore time includes a `sync -f` right after it.
	settle; measure "r_rest.$n" restic --repo "$r_repo" restore latest --target "$r_out"
	NO_WAIT=1 measure "r_sync.$n" sync -f "$r_out"
	T[r_restore.$n]=$(awk -v a="${T[r_rest.$n]}" -v b="${T[r_sync.$n]}" 'BEGIN { printf "%.2f", a + b }')
	CPU[r_restore.$n]=$(awk -v a="${CPU[r_rest.$n]}" -v b="${CPU[r_sync.$n]}" 'BEGIN { printf "%.2f", a + b }')
	RSS[r_restore.$n]=${RSS[r_rest.$n]}
	cmp "$IMG" "$r_out$IMG" || die "restic restore differs from the image"
	rm -rf "$r_out"
	settle; measure "h_restore.$n" "$HF" restore --repo "$h_repo" latest --disk 0 --to "$h_out"
	cmp "$IMG" "$h_out" || die "holdfast restore differs from the image"
	H_OUT_ALLOC=$(($(stat -c %b "$h_out") * 512))
	rm -f "$h_out"
	log "round $n: both restores verified with cmp"
}

for ((rnd = 1; rnd <= REPEAT; rnd++)); do round "$rnd"; done

# Over the rounds: best KEY is the lowest wall time, mid_cpu KEY the median
# CPU time, most KEY the highest peak RSS; all KEY lists the wall times.
over_rounds() { # ARRAY KEY min|median|max
	local -n arr=$1
	local i
	for ((i = 1; i <= REPEAT; i++)); do echo "${arr[$2.$i]}"; done | sort -g |
		awk -v m="$3" '{ v[NR] = $1 } END { print (m == "min") ? v[1] : (m == "max") ? v[NR] : v[int((NR + 1) / 2)] }'
}
best() { over_rounds T "$1" min; }
# best_key KEY: KEY.N of the round with the lowest wall time.
best_key() {
	local i b=1
	for ((i = 2; i <= REPEAT; i++)); do if lt "${T[$1.$i]}" "${T[$1.$b]}"; then b=$i; fi; done
	echo "$1.$b"
}
mid_cpu() { over_rounds CPU "$1" median; }
most() { over_rounds RSS "$1" max; }
all() { local i o=""; for ((i = 1; i <= REPEAT; i++)); do o+="${o:+/}${T[$1.$i]}"; done; echo "$o"; }

# --- report ------------------------------------------------------------------
json_field() { sed -n "s/.*\"$2\": *\\([0-9.]*\\).*/\\1/p" "$WORK/$1.$REPEAT.out" | head -n 1; }
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
if ((REPEAT > 1)); then
	rounds_note="$REPEAT rounds (each: fresh repositories, fresh copy of the image): wall times are the best round, CPU times the median, peak RSS the highest."
else
	rounds_note="One round (REPEAT=1)."
fi
cmd="SIZE=$SIZE"
((REPEAT == 3)) || cmd+=" REPEAT=$REPEAT"
[[ ${WAIT_IDLE:-0} == 0 ]] || cmd+=" WAIT_IDLE=$WAIT_IDLE"

# The noise warning looks at the rounds the table's times come from.
mapfile -t judged < <(for k in r_full h_full r_same h_same r_incr h_incr r_restore h_restore; do best_key "$k"; done)
judged=("${judged[@]/#r_restore/r_rest}")

cat <<EOF
### Raw image, $(mib "$SIZE_BYTES") MiB — holdfast vs restic

Image: GPT + ext4, $DATA_FILES files ($(mib "$DATA_BYTES") MiB) from \`$SRC_DIRS\`,
$(mib "$RAND_BYTES") MiB incompressible file, rest free ($(mib "$IMG_ALLOC") MiB allocated in the sparse image).
Change step: $CHANGED_BLOCKS random 64 KiB blocks ($CHANGE_PCT % of the image).
Machine: $(machine_line). Versions: $(restic version | awk '{ print $1, $2 }'),
$(holdfast_version_line), repository ${H_INIT#created repository * at * }.
Both repositories encrypted; restic repository format 2, compression \`auto\`. Page cache warm, no caches dropped.
$rounds_note
Command: \`$cmd bench/run.sh\`

| Metric | restic | holdfast | holdfast / restic | Target | Result |
| --- | ---: | ---: | ---: | --- | --- |
EOF
row_time "Full backup (s)" "$(best r_full)" "$(best h_full)" 0.5
row_time "Unchanged re-backup (s) ¹" "$(best r_same)" "$(best h_same)"
row_time "Backup after $CHANGE_PCT % change (s)" "$(best r_incr)" "$(best h_incr)"
row_time "Restore latest (s) ²" "$(best r_restore)" "$(best h_restore)" 0.5
printf '| Repository size after 3 backups (MiB) | %s | %s | %s | ±10 %% | %s |\n' \
	"$(mib "$R_SIZE")" "$(mib "$H_SIZE")" "$size_ratio" "$(passfail in_band "$size_ratio")"
row_time "CPU user+sys, full backup (s)" "$(mid_cpu r_full)" "$(mid_cpu h_full)"
row_time "CPU user+sys, unchanged re-backup (s)" "$(mid_cpu r_same)" "$(mid_cpu h_same)"
row_time "CPU user+sys, backup after change (s)" "$(mid_cpu r_incr)" "$(mid_cpu h_incr)"
row_time "CPU user+sys, restore (s)" "$(mid_cpu r_restore)" "$(mid_cpu h_restore)"
row_rss "Peak RSS, full backup (MiB)" "$(most r_full)" "$(most h_full)"
row_rss "Peak RSS, unchanged re-backup (MiB)" "$(most r_same)" "$(most h_same)"
row_rss "Peak RSS, backup after change (MiB)" "$(most r_incr)" "$(most h_incr)"
row_rss "Peak RSS, restore (MiB)" "$(most r_restore)" "$(most h_restore)"
cat <<EOF

¹ restic skips the unchanged image without reading it (same mtime, size and inode as in its
parent snapshot); holdfast re-reads and hashes every allocated range.
² holdfast fsyncs the restored image before it exits and writes zero chunks as holes
($(mib "$H_OUT_ALLOC") MiB allocated); restic 0.14 writes every byte and does not sync, so its
time is \`restic restore\` plus a \`sync -f\` right after it.

Wall times per round (s), restic | holdfast: full $(all r_full) | $(all h_full);
unchanged $(all r_same) | $(all h_same); after change $(all r_incr) | $(all h_incr);
restore $(all r_restore) | $(all h_restore).
holdfast new/stored MiB (last round): full $(mib "$(json_field h_full bytes_new)")/$(mib "$(json_field h_full bytes_stored)"),
unchanged $(mib "$(json_field h_same bytes_new)")/$(mib "$(json_field h_same bytes_stored)"),
after change $(mib "$(json_field h_incr bytes_new)")/$(mib "$(json_field h_incr bytes_stored)").
$(load_note "${judged[@]}")
EOF
