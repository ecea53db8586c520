#!/usr/bin/env bash
# Benchmark of file-level restore (issue 12): `holdfast files restore` of
# FILES (10,000) small files from a backed-up ext4 image, against extracting
# the same tree from a tar archive and `cp -a` of it, both on local disk.
# Prints a Markdown table for docs/performance.md on stdout; progress goes
# to stderr. Needs no root (mkfs.ext4 -d, sfdisk on an image file).
#
#   bench/files.sh                    # 10,000 files, 3 rounds: ~1 min on an idle 2-core machine
#   FILES=2000 REPEAT=1 bench/files.sh
#   KEEP=1 BENCH_DIR=/var/tmp/hf bench/files.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

FILES=${FILES:-10000}
PER_DIR=${PER_DIR:-100}        # files per directory
REPEAT=${REPEAT:-3}            # rounds; the table shows the best
PASSWORD=${PASSWORD:-bench-password}
TARGET_SECS=${TARGET_SECS:-10} # issue 12: 10,000 files in under 10 s

need go golang-go
need /usr/bin/time time
need mkfs.ext4 e2fsprogs
need sfdisk fdisk
need jq jq

setup_workdir holdfast-files-bench
log "work dir $WORK, $FILES files, $PER_DIR per directory, $REPEAT rounds"
HF=$WORK/holdfast
holdfast_binary "$HF"

# --- the tree: FILES files of 200 B – 8 KiB in FILES/PER_DIR directories -----
SRC=$WORK/src
mkdir -p "$SRC"
awk -v n="$FILES" -v per="$PER_DIR" -v dir="$SRC" 'BEGIN {
	srand(12)
	for (i = 0; i < n; i++) {
		d = sprintf("%s/dir%04d", dir, int(i / per))
		if (i % per == 0) system("mkdir -p " d)
		f = sprintf("%s/file%05d.txt", d, i)
		size = 200 + int(rand() * 8000)
		line = sprintf("file %d of the benchmark tree, some text to fill it up. ", i)
		s = ""
		while (length(s) < size) s = s line
		printf "%s", substr(s, 1, size) > f
		close(f)
	}
}'
DATA_KB=$(du -sk --apparent-size "$SRC" | awk '{ print $1 }')
log "tree: $FILES files, ${DATA_KB} KiB"

# --- an ext4 image in a GPT partition, backed up ------------------------------
FS_MIB=$((DATA_KB / 1024 * 3 + 64))
IMG=$WORK/disk.img
truncate -s $((FS_MIB + 2))M "$IMG"
printf 'label: gpt\nstart=2048, type=linux\n' | sfdisk -q "$IMG"
mkfs.ext4 -q -F -d "$SRC" -E offset=1048576 "$IMG" "${FS_MIB}M"
export HOLDFAST_REPOSITORY=$WORK/repo HOLDFAST_PASSWORD=$PASSWORD
"$HF" repo init >&2
POINT=$("$HF" backup --json --name bench "$IMG" | jq -r .point)
log "point $POINT"
tar -C "$SRC" -cf "$WORK/tree.tar" .

best() { # NAME: the best (lowest) of T[NAME.1..REPEAT]
	local i b=""
	for ((i = 1; i <= REPEAT; i++)); do
		if [[ -z $b ]] || lt "${T[$1.$i]}" "$b"; then b=${T[$1.$i]}; fi
	done
	echo "$b"
}
for ((i = 1; i <= REPEAT; i++)); do
	rm -rf "$WORK/out" "$WORK/tar" "$WORK/cp"
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	measure "files.$i" "$HF" files restore "$POINT" / --to "$WORK/out"
	mkdir "$WORK/tar"
	measure "tar.$i" tar -C "$WORK/tar" -xf "$WORK/tree.tar"
	measure "cp.$i" cp -a "$SRC" "$WORK/cp"
done
n=$(find "$WORK/out" -type f | wc -l)
((n == FILES)) || die "restored $n files, want $FILES"
diff -r "$SRC" "$WORK/out" -x lost+found >/dev/null || die "restored tree differs from the source"

F=$(best files) TAR=$(best tar) CP=$(best cp)
echo "### File-level restore: $FILES small files (${DATA_KB} KiB) from an ext4 image, best of $REPEAT, $(date -u +%Y-%m-%d)"
echo
echo "$(machine_line); $(holdfast_version_line)."
echo
echo "| what | seconds | files/s | holdfast's time ÷ this |"
echo "|---|---:|---:|---:|"
echo "| \`holdfast files restore POINT / --to DIR\` (through the repository) | $F | $(awk -v n="$FILES" -v t="$F" 'BEGIN { printf "%.0f", n / t }') | 1.00 |"
echo "| \`tar -xf\` of the same tree (local archive) | $TAR | $(awk -v n="$FILES" -v t="$TAR" 'BEGIN { printf "%.0f", n / t }') | $(ratio "$F" "$TAR") |"
echo "| \`cp -a\` of the same tree (local disk) | $CP | $(awk -v n="$FILES" -v t="$CP" 'BEGIN { printf "%.0f", n / t }') | $(ratio "$F" "$CP") |"
echo
echo "Target (issue 12): $FILES files in under $TARGET_SECS s: $(passfail lt "$F" "$TARGET_SECS")."
echo
load_note
