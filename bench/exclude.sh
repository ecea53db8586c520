#!/usr/bin/env bash
# Excluding free space: a guest disk whose ext4 file system had large
# files deleted, backed up with and without --exclude-free. Prints a
# Markdown table for docs/performance.md ("Excluding free space") on
# stdout; progress goes to stderr. No root needed: the files are written
# by mkfs.ext4 -d and deleted with debugfs, as a guest would have left
# them (the deleted files' blocks still hold their bytes).
#
#   bench/exclude.sh                     # 1 GiB disk, 700 MiB written, 600 MiB deleted, 3 rounds
#   DISK=256M WRITE=150M DELETE=120M REPEAT=1 bench/exclude.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

DISK=${DISK:-1G}
WRITE=${WRITE:-700M}    # random files written into the file system
DELETE=${DELETE:-600M}  # of which these are deleted again
FILE=${FILE:-100M}      # size of each file
REPEAT=${REPEAT:-3}     # rounds; the table shows the best time
KEEP=${KEEP:-0}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}

DISK_BYTES=$(to_bytes "$DISK")
FILE_BYTES=$(to_bytes "$FILE")
N_WRITE=$(($(to_bytes "$WRITE") / FILE_BYTES))
N_DELETE=$(($(to_bytes "$DELETE") / FILE_BYTES))
((N_DELETE <= N_WRITE && N_WRITE > 0)) || die "DELETE must not exceed WRITE, and WRITE must hold one FILE"

need go golang-go
need sfdisk fdisk
need mkfs.ext4 e2fsprogs
need jq jq

setup_workdir holdfast-exclude
need_space $((DISK_BYTES * 4 / 1024))
HF=$WORK/holdfast
holdfast_binary "$HF"

log "making a $DISK disk: GPT, one ext4 partition, $N_WRITE files of $FILE, $N_DELETE deleted"
mkdir -p "$WORK/files"
for ((i = 0; i < N_WRITE; i++)); do
	head -c "$FILE_BYTES" /dev/urandom >"$WORK/files/f$i"
done
PART=$WORK/part.img
PART_BYTES=$((DISK_BYTES - (2 << 20)))
truncate -s "$PART_BYTES" "$PART"
mkfs.ext4 -q -F -d "$WORK/files" "$PART"
for ((i = 0; i < N_DELETE; i++)); do
	debugfs -w -R "rm f$i" "$PART" >/dev/null 2>&1
done
rm -rf "$WORK/files"
IMG=$WORK/disk.img
truncate -s "$DISK_BYTES" "$IMG"
printf 'label: gpt\nstart=2048, size=%d, type=linux\n' $((PART_BYTES / 512)) | sfdisk -q "$IMG"
dd if="$PART" of="$IMG" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$PART"

# backup FLAGS...: one backup into a fresh repository; prints
# "seconds read new stored excluded".
backup() {
	rm -rf "$WORK/repo"
	HOLDFAST_REPOSITORY=$WORK/repo "$HF" repo init >/dev/null
	HOLDFAST_REPOSITORY=$WORK/repo "$HF" backup --json --name vm "$@" "$IMG" |
		jq -r '[.duration_seconds, .disks[0].bytes_read, .disks[0].bytes_new, .disks[0].bytes_stored,
			((.disks[0].excluded // {}) | [.[]] | add // 0)] | @tsv'
}

declare -A best
for mode in plain exclude; do
	flags=()
	[[ $mode == exclude ]] && flags=(--exclude-free)
	for ((r = 1; r <= REPEAT; r++)); do
		read -r secs rd new stored excl < <(backup "${flags[@]}")
		log "$mode round $r: ${secs}s, read $rd, new $new, stored $stored, excluded $excl"
		if [[ -z ${best[$mode]:-} ]] || awk -v a="$secs" -v b="${best[$mode]%% *}" 'BEGIN { exit !(a < b) }'; then
			best[$mode]="$secs $rd $new $stored $excl"
		fi
	done
done

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
sec() { awk -v s="$1" 'BEGIN { printf "%.2f", s }'; }
read -r ps pr pn pst _ <<<"${best[plain]}"
read -r es er en est ex <<<"${best[exclude]}"
echo "### Excluding free space: $DISK disk, ext4, $WRITE written then $DELETE deleted (best of $REPEAT), $(date -u +%Y-%m-%d)"
echo
echo "| backup | time (s) | read (MiB) | new (MiB) | stored (MiB) | excluded (MiB) |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| \`backup\` | $(sec "$ps") | $(mib "$pr") | $(mib "$pn") | $(mib "$pst") | 0 |"
echo "| \`backup --exclude-free\` | $(sec "$es") | $(mib "$er") | $(mib "$en") | $(mib "$est") | $(mib "$ex") |"
echo "| ratio (exclude / plain) | $(awk -v a="$es" -v b="$ps" 'BEGIN { printf "%.2f", a / b }') | $(awk -v a="$er" -v b="$pr" 'BEGIN { printf "%.2f", a / b }') | $(awk -v a="$en" -v b="$pn" 'BEGIN { printf "%.2f", a / b }') | $(awk -v a="$est" -v b="$pst" 'BEGIN { printf "%.2f", a / b }') | |"
