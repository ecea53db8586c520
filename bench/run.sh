#!/usr/bin/env bash
# Side-by-side benchmark of holdfast and its peers on a realistic raw disk
# image: restic (the newest release, built by bench/peers.sh, and Debian's
# 0.14), kopia (built by bench/peers.sh) and, for restore, `cp --sparse=always`
# + sync as the floor. Every step runs each tool in turn (the order rotates
# from round to round), so load from other work hits all tools alike; the
# table shows medians over the rounds and the ratios the targets are about.
# Prints a Markdown table for docs/performance.md on stdout; progress goes to
# stderr. See bench/README.md.
#
#   bash bench/run.sh                     # 2 GiB image (~750 MiB allocated), 3 rounds
#   SIZE=512M REPEAT=1 bash bench/run.sh  # quick iteration
#   TOOLS="holdfast restic" INCR=0 bash bench/run.sh
#   HOLDFAST_BIN=bin/holdfast KEEP=1 BENCH_DIR=/var/tmp/hb bash bench/run.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-2G}
SEED=${SEED:-42}                        # seeds the 1 % change offsets
SRC_DIRS=${SRC_DIRS:-"/usr/share /usr/lib"}
DATA_PCT=${DATA_PCT:-25}                # real files, % of the image
RANDOM_PCT=${RANDOM_PCT:-10}            # incompressible file, % of the image
CHANGE_PCT=${CHANGE_PCT:-1}             # changed before the incremental backup
REPEAT=${REPEAT:-3}                     # rounds; the table shows medians
TOOLS=${TOOLS:-"holdfast restic restic014 kopia"}  # cp (restore floor) always runs
INCR=${INCR:-1}                         # 0: skip the incremental backup
DROP_CACHES=${DROP_CACHES:-1}           # drop the page cache before each step (root only)
DROP_ASKED=$DROP_CACHES
VERIFY=${VERIFY:-1}                     # cmp every restore with the image
KEEP=${KEEP:-0}
export RESTIC_PASSWORD=${RESTIC_PASSWORD:-bench-password}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}
export KOPIA_PASSWORD=${KOPIA_PASSWORD:-bench-password}
export KOPIA_CHECK_FOR_UPDATES=false

SIZE_BYTES=$(to_bytes "$SIZE")
((SIZE_BYTES >= 64 << 20)) || die "SIZE must be at least 64M"
read -r -a TOOL_LIST <<<"$TOOLS"
for t in "${TOOL_LIST[@]}"; do
	case $t in holdfast | restic | restic014 | kopia) ;; *) die "TOOLS: unknown tool $t (holdfast restic restic014 kopia)" ;; esac
done
[[ " $TOOLS " == *" holdfast "* ]] || die "TOOLS must include holdfast"

# --- tools -----------------------------------------------------------------
need go golang-go
need sfdisk fdisk
need mkfs.ext4 e2fsprogs
need /usr/bin/time time
need cmp diffutils
[[ " $TOOLS " != *" restic014 "* ]] || need restic restic
RESTIC014=$(command -v restic || true)
peers=()
for t in restic kopia; do [[ " $TOOLS " != *" $t "* ]] || peers+=("$t"); done
if ((${#peers[@]})); then
	PEERS=$("$HERE/peers.sh" "${peers[@]}") || die "bench/peers.sh failed"
	rv=${RESTIC_VERSION:-v0.18.1} kv=${KOPIA_VERSION:-v0.21.1}   # as in peers.sh
	[[ " ${peers[*]} " != *" restic "* ]] || RESTIC_NEW=$PEERS/restic-${rv#v}
	[[ " ${peers[*]} " != *" kopia "* ]] || KOPIA=$PEERS/kopia-${kv#v}
fi

# Short names for the table.
declare -A LABEL=([holdfast]=holdfast [cp]="cp --sparse=always + sync")
[[ -z ${RESTIC_NEW:-} ]] || LABEL[restic]="restic $("$RESTIC_NEW" version | awk '{ print $2 }')"
[[ -z ${RESTIC014:-} ]] || LABEL[restic014]="restic $("$RESTIC014" version | awk '{ print $2 }') (Debian)"
[[ -z ${KOPIA:-} ]] || LABEL[kopia]="kopia $("$KOPIA" --version | awk '{ print $1 }')"

# --- work dir ----------------------------------------------------------------
setup_workdir holdfast-bench
log "work dir $WORK, image size $SIZE ($SIZE_BYTES bytes), tools: $TOOLS"

# Disk space: pristine image + working copy (~40 % each) + staging (~35 %) +
# one restore at a time (100 %) + the repositories of every round (~35 % per
# tool and backup kept to the end).
need_kb=$((SIZE_BYTES * (250 + 40 * ${#TOOL_LIST[@]} * REPEAT) / 100 / 1024))
need_space "$need_kb"

HF=$WORK/holdfast
holdfast_binary "$HF"

mkdir -p "$WORK/src"
# --- test image ------------------------------------------------------------
IMG=$WORK/src/disk.img   # alone in its directory (kopia backs up the directory)
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

# Drop the page cache (root only; DROP_CACHES=0 keeps it): every step then
# reads its input the same way, whatever ran before it.
CACHE_NOTE="Page cache not dropped (DROP_CACHES=0 or not root): repositories are read warm."
if [[ $DROP_CACHES == 1 ]]; then
	if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
		CACHE_NOTE="Before every step: \`sync\` and \`echo 3 > /proc/sys/vm/drop_caches\`; backups then read the image once (warm source, as a VM disk in use would be), restores and \`cp\` read cold."
	else
		log "cannot drop the page cache (not root?); running with a warm cache"
		DROP_CACHES=0
	fi
fi

# prepare: flush earlier writes (so no tool pays for another's dirty pages)
# and drop the page cache; `warm` then reads the image back into it.
prepare() {
	sync
	if [[ $DROP_CACHES == 1 ]]; then echo 3 >/proc/sys/vm/drop_caches; fi
	if [[ ${1:-} == warm ]]; then cat "$IMG" >/dev/null; fi
}

# Per-tool commands. RD is the round's directory; each tool has its own
# repository (and cache/config) there.
# init_repo TOOL RD: create TOOL's repository (not measured).
init_repo() {
	local t=$1 rd=$2 out=$WORK/$1-init.out
	case $t in
	holdfast) "$HF" repo init --repo "$rd/holdfast-repo" >"$out" 2>&1 ;;
	restic) RESTIC_CACHE_DIR=$rd/restic-cache "$RESTIC_NEW" init --repo "$rd/restic-repo" >"$out" 2>&1 ;;
	restic014) RESTIC_CACHE_DIR=$rd/restic014-cache "$RESTIC014" init --repo "$rd/restic014-repo" >"$out" 2>&1 ;;
	kopia)
		{
			kopia_env "$rd" "$KOPIA" repository create filesystem --path "$rd/kopia-repo" &&
				# zstd like restic and holdfast (kopia compresses nothing by default).
				kopia_env "$rd" "$KOPIA" policy set --global --compression=zstd-fastest &&
				# No maintenance run at the end of a measured snapshot.
				kopia_env "$rd" "$KOPIA" maintenance set --enable-quick=false --enable-full=false
		} >"$out" 2>&1
		;;
	esac || { cat "$out" >&2; die "$t: repository init failed"; }
	[[ $t != holdfast ]] || H_INIT=$(cat "$out")
}
# kopia_env RD CMD...: CMD with RD's kopia configuration, cache and logs
# (kopia_vars RD: the same as an env argument list, for measured commands).
kopia_vars() {
	KV=(env KOPIA_CONFIG_PATH="$1/kopia.config" KOPIA_CACHE_DIRECTORY="$1/kopia-cache" KOPIA_LOG_DIR="$1/kopia-logs")
}
kopia_env() { local KV; kopia_vars "$1"; shift; "${KV[@]}" "$@"; }
# backup_cmd TOOL RD: CMD = the backup command of TOOL.
backup_cmd() {
	local rd=$2
	case $1 in
	holdfast) CMD=("$HF" backup --repo "$rd/holdfast-repo" --name vm1 --json "$IMG") ;;
	restic) CMD=(env RESTIC_CACHE_DIR="$rd/restic-cache" "$RESTIC_NEW" --repo "$rd/restic-repo" backup "$IMG") ;;
	restic014) CMD=(env RESTIC_CACHE_DIR="$rd/restic014-cache" "$RESTIC014" --repo "$rd/restic014-repo" backup "$IMG") ;;
	kopia) kopia_vars "$rd"; CMD=("${KV[@]}" "$KOPIA" snapshot create "$WORK/src") ;;
	esac
}
# restore_cmd TOOL RD OUT: CMD = the command restoring the latest backup
# into OUT (a file for holdfast and cp, a directory for the others);
# RESTORED = the restored image's path.
restore_cmd() {
	local rd=$2 out=$3
	case $1 in
	holdfast) CMD=("$HF" restore --repo "$rd/holdfast-repo" latest --disk 0 --to "$out") RESTORED=$out ;;
	# --sparse: holes for zero runs, as holdfast and cp write them.
	restic) CMD=(env RESTIC_CACHE_DIR="$rd/restic-cache" "$RESTIC_NEW" --repo "$rd/restic-repo" restore latest --sparse --target "$out") RESTORED=$out$IMG ;;
	# restic 0.14 has no --sparse: it writes every byte.
	restic014) CMD=(env RESTIC_CACHE_DIR="$rd/restic014-cache" "$RESTIC014" --repo "$rd/restic014-repo" restore latest --target "$out") RESTORED=$out$IMG ;;
	kopia)
		local id
		id=$(kopia_latest "$rd")
		[[ -n $id ]] || die "kopia: no snapshot of $WORK/src in $rd/kopia-repo"
		kopia_vars "$rd"
		CMD=("${KV[@]}" "$KOPIA" snapshot restore "$id" "$out" --write-sparse-files) RESTORED=$out/disk.img
		;;
	cp) CMD=(cp --sparse=always "$IMG" "$out") RESTORED=$out ;;
	esac
}
# kopia_latest RD: the ID of the newest snapshot in RD's kopia repository
# (the list is oldest first).
kopia_latest() {
	kopia_env "$1" "$KOPIA" snapshot list "$WORK/src" --json |
		grep -o '"id": *"[0-9a-f]*"' | tail -n 1 | sed 's/.*"\([0-9a-f]*\)"$/\1/'
}
# repo_bytes TOOL RD: size of TOOL's repository (caches are kept outside).
repo_bytes() { du -sb "$2/$1-repo" | cut -f1; }

# order N WORD...: the words rotated by N-1 (each tool goes first in turn).
order() {
	local n=$1; shift
	local k=$((($n - 1) % $#))
	echo "${@:k+1}" "${@:1:k}"
}

# round N: fresh repositories and a fresh copy of the image, then each step
# for every tool in turn. The image path is the same for all backups of a
# round, so restic and kopia find their previous snapshot (and, for an
# unchanged file, would skip it by its metadata).
round() {
	local n=$1 t out
	local rd=$WORK/round-$n
	# Repositories of earlier rounds stay until the end: deleting thousands
	# of files just before a backup slows down the inode allocation of the
	# next one on some file systems (ext4 without a journal skips recently
	# freed inodes), which would penalise holdfast's one-file-per-chunk
	# layout far more than pack files.
	log "=== round $n of $REPEAT"
	rm -rf "$rd" "$IMG"
	mkdir -p "$rd"
	cp --sparse=always "$PRISTINE" "$IMG"
	for t in "${TOOL_LIST[@]}"; do init_repo "$t" "$rd"; done

	for t in $(order "$n" "${TOOL_LIST[@]}"); do
		backup_cmd "$t" "$rd"
		prepare warm; measure "$t.full.$n" "${CMD[@]}"
	done
	if [[ $INCR == 1 ]]; then
		change_image
		for t in $(order "$n" "${TOOL_LIST[@]}"); do
			backup_cmd "$t" "$rd"
			prepare warm; measure "$t.incr.$n" "${CMD[@]}"
		done
	fi
	sync
	for t in "${TOOL_LIST[@]}"; do REPO_SIZE[$t]=$(repo_bytes "$t" "$rd"); done

	# Every restore is followed by `sync FILE` (fsync) on the restored file, so a tool
	# that leaves dirty pages behind pays for writing them like one that
	# fsyncs (holdfast does; restic and kopia do not).
	for t in $(order "$n" "${TOOL_LIST[@]}" cp); do
		out=$WORK/restore-$t
		rm -rf "$out"
		restore_cmd "$t" "$rd" "$out"
		prepare; measure "$t.rest.$n" "${CMD[@]}"
		NO_WAIT=1 measure "$t.sync.$n" sync "$RESTORED"
		T[$t.restore.$n]=$(awk -v a="${T[$t.rest.$n]}" -v b="${T[$t.sync.$n]}" 'BEGIN { printf "%.2f", a + b }')
		CPU[$t.restore.$n]=$(awk -v a="${CPU[$t.rest.$n]}" -v b="${CPU[$t.sync.$n]}" 'BEGIN { printf "%.2f", a + b }')
		RSS[$t.restore.$n]=${RSS[$t.rest.$n]}
		ALLOC[$t]=$(($(stat -c %b "$RESTORED") * 512))
		if [[ $VERIFY == 1 ]]; then
			cmp "$IMG" "$RESTORED" || die "$t: restored image differs from the image"
		fi
		rm -rf "$out"
	done
	if [[ $VERIFY == 1 ]]; then log "round $n: every restore verified with cmp"; fi
}

declare -A REPO_SIZE=() ALLOC=()
for ((rnd = 1; rnd <= REPEAT; rnd++)); do round "$rnd"; done

# --- report ------------------------------------------------------------------
# Over the rounds: med ARRAY KEY is the median, most KEY the highest peak RSS,
# all KEY lists the wall times.
over_rounds() { # ARRAY KEY min|median|max
	local -n arr=$1
	local i
	for ((i = 1; i <= REPEAT; i++)); do echo "${arr[$2.$i]}"; done | sort -g |
		awk -v m="$3" '{ v[NR] = $1 } END {
			if (m == "min") print v[1]; else if (m == "max") print v[NR];
			else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
med() { over_rounds T "$1" median; }
med_cpu() { over_rounds CPU "$1" median; }
most() { over_rounds RSS "$1" max; }
all() { local i o=""; for ((i = 1; i <= REPEAT; i++)); do o+="${o:+/}${T[$1.$i]}"; done; echo "$o"; }
or_dash() { if [[ $INCR == 1 ]]; then "$@"; else echo "—"; fi; }

if ((REPEAT > 1)); then
	rounds_note="$REPEAT rounds (each: fresh repositories, fresh copy of the image; the tools take turns going first): times are medians over the rounds, peak RSS the highest."
else
	rounds_note="One round (REPEAT=1)."
fi
cmd="SIZE=$SIZE"
((REPEAT == 3)) || cmd+=" REPEAT=$REPEAT"
[[ $TOOLS == "holdfast restic restic014 kopia" ]] || cmd+=" TOOLS=\"$TOOLS\""
((INCR == 1)) || cmd+=" INCR=0"
((DROP_ASKED == 1)) || cmd+=" DROP_CACHES=0"
[[ ${WAIT_IDLE:-0} == 0 ]] || cmd+=" WAIT_IDLE=$WAIT_IDLE"
((DATA_PCT == 25 && RANDOM_PCT == 10)) || cmd+=" DATA_PCT=$DATA_PCT RANDOM_PCT=$RANDOM_PCT"

repo_note="All repositories encrypted"
[[ " $TOOLS " != *" restic"* ]] || repo_note+="; restic repository format 2, compression \`auto\`"
[[ " $TOOLS " != *" kopia "* ]] || repo_note+="; kopia compression \`zstd-fastest\`"
repo_note+="."
incr_note="No incremental backup (INCR=0)."
if [[ $INCR == 1 ]]; then
	incr_note="Incremental: after $CHANGED_BLOCKS random 64 KiB blocks ($CHANGE_PCT % of the image) were overwritten."
fi
versions=""
for t in "${TOOL_LIST[@]}"; do [[ $t == holdfast ]] || versions+="${LABEL[$t]}, "; done

cat <<EOF
### Raw image, $(mib "$SIZE_BYTES") MiB ($(mib "$IMG_ALLOC") MiB allocated) — holdfast and its peers, $(date -u +%Y-%m-%d)

Image: GPT + ext4, $DATA_FILES files ($(mib "$DATA_BYTES") MiB) from \`$SRC_DIRS\`,
$(mib "$RAND_BYTES") MiB incompressible file, rest free ($(mib "$IMG_ALLOC") MiB allocated in the sparse image).
$incr_note
Machine: $(machine_line).
Versions: $(holdfast_version_line), repository ${H_INIT#created repository * at * }${versions:+; ${versions%, }}.
$repo_note
$CACHE_NOTE
Each restore is timed together with a \`sync FILE\` (fsync) of the restored file right after it; restic 0.18 and kopia write holes (\`--sparse\`, \`--write-sparse-files\`).
$rounds_note
Command: \`$cmd bash bench/run.sh\`

| Tool | Full backup (s) | Incremental (s) | Restore + sync (s) | CPU full backup (s) | CPU restore (s) | Peak RSS backup (MiB) | Peak RSS restore (MiB) | Repository (MiB) | Restored, allocated (MiB) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
EOF
for t in "${TOOL_LIST[@]}"; do
	rss_b=$(most "$t.full")
	if [[ $INCR == 1 ]]; then rss_b=$(printf '%s\n%s\n' "$rss_b" "$(most "$t.incr")" | sort -g | tail -n 1); fi
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$t]}" \
		"$(med "$t.full")" "$(or_dash med "$t.incr")" "$(med "$t.restore")" \
		"$(med_cpu "$t.full")" "$(med_cpu "$t.restore")" \
		"$(kib2mib "$rss_b")" "$(kib2mib "$(most "$t.restore")")" \
		"$(mib "${REPO_SIZE[$t]}")" "$(mib "${ALLOC[$t]}")"
done
printf '| %s | — | — | %s | — | %s | — | %s | — | %s |\n' "${LABEL[cp]}" \
	"$(med cp.restore)" "$(med_cpu cp.restore)" "$(kib2mib "$(most cp.restore)")" "$(mib "${ALLOC[cp]}")"

# check LABEL VALUE TARGET-TEXT [TEST...]: a row of the checks table.
check() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$(if (($# > 3)); then passfail "${@:4}"; else echo —; fi)"; }
h_full=$(med holdfast.full) h_rest=$(med holdfast.restore)
h_rss=$(most holdfast.full)
for k in holdfast.restore $([[ $INCR == 1 ]] && echo holdfast.incr); do
	r=$(most "$k")
	if ((r > h_rss)); then h_rss=$r; fi
done
printf '\n| Check (medians) | Value | Target | Result |\n| --- | ---: | --- | --- |\n'
if [[ " $TOOLS " == *" restic "* ]]; then
	q=$(ratio "$h_full" "$(med restic.full)"); check "full backup, holdfast / ${LABEL[restic]}" "$q" "≤ 0.3" le "$q" 0.3
	q=$(ratio "$h_rest" "$(med restic.restore)"); check "restore, holdfast / ${LABEL[restic]}" "$q" "≤ 0.3" le "$q" 0.3
	# CPU seconds suffer less from other load than wall times.
	check "CPU full backup, holdfast / ${LABEL[restic]}" "$(ratio "$(med_cpu holdfast.full)" "$(med_cpu restic.full)")" "—"
	check "CPU restore, holdfast / ${LABEL[restic]}" "$(ratio "$(med_cpu holdfast.restore)" "$(med_cpu restic.restore)")" "—"
fi
q=$(ratio "$h_rest" "$(med cp.restore)"); check "restore, holdfast / ${LABEL[cp]}" "$q" "≤ 2.5" le "$q" 2.5
check "peak RSS, holdfast, any step (MiB)" "$(kib2mib "$h_rss")" "< 512" lt "$h_rss" $((512 * 1024))
for t in "${TOOL_LIST[@]}"; do
	[[ $t == holdfast || $t == restic ]] && continue
	check "full backup, holdfast / ${LABEL[$t]}" "$(ratio "$h_full" "$(med "$t.full")")" "—"
	check "restore, holdfast / ${LABEL[$t]}" "$(ratio "$h_rest" "$(med "$t.restore")")" "—"
done
if [[ $INCR == 1 && " $TOOLS " == *" restic "* ]]; then
	check "incremental, holdfast / ${LABEL[restic]}" "$(ratio "$(med holdfast.incr)" "$(med restic.incr)")" "—"
fi

echo
echo "Wall times per round (s):"
for t in "${TOOL_LIST[@]}"; do
	line="${LABEL[$t]}: full $(all "$t.full")"
	if [[ $INCR == 1 ]]; then line+=", incremental $(all "$t.incr")"; fi
	echo "- $line, restore + sync $(all "$t.restore") (sync alone $(all "$t.sync"))."
done
echo "- ${LABEL[cp]}: $(all cp.restore) (sync alone $(all cp.sync))."
echo
load_note
