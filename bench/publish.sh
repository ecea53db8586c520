#!/usr/bin/env bash
# Benchmark of publish (issue 12): a restore point mounted read-only on this
# host (FUSE → read-only loop devices → partitions → mounts). Needs root.
# Prints Markdown tables for docs/performance.md on stdout; progress goes to
# stderr.
#
#   bench/publish.sh                     # 1 GiB file, 5 + 3 rounds: ~2 min on an idle 2-core machine
#   SIZE=256M REPEAT=2 SEQ_REPEAT=1 bench/publish.sh   # quick check
#   KEEP=1 BENCH_DIR=/var/tmp/hp bench/publish.sh
#
# The VM has one GPT disk with three filesystems: ext4 holding a SIZE file
# of random data, xfs and btrfs holding a few small files.
# 1. Start-up: `holdfast publish POINT --json` returns once all three are
#    mounted; wall time, REPEAT rounds (each followed by unpublish, timed too).
# 2. Sequential read: from a fresh publish (new FUSE mount, new loop device,
#    cold chunk cache: nothing of the point in the kernel's page cache above
#    the repository files), `dd` of the SIZE file to /dev/null and `cp` of
#    it to a file, against `holdfast restore POINT --disk 0 --to FILE` of the
#    whole disk, SEQ_REPEAT rounds. Throughput is the file's bytes for the
#    published reads and the disk's data bytes (what the backup read) for the
#    restore. The repository's chunk files stay in the page cache for both.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-1G}               # the big file, random (incompressible)
REPEAT=${REPEAT:-5}            # part 1 rounds
SEQ_REPEAT=${SEQ_REPEAT:-3}    # part 2 rounds
KEEP=${KEEP:-0}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}

SIZE_BYTES=$(to_bytes "$SIZE")
((SIZE_BYTES >= 16 << 20)) || die "SIZE must be at least 16M"
[[ $(id -u) -eq 0 ]] || die "publish needs root"
[[ -e /dev/fuse ]] || die "publish needs /dev/fuse"

need go golang-go
need jq jq
need /usr/bin/time time
need sfdisk fdisk
need mkfs.ext4 e2fsprogs
need mkfs.xfs xfsprogs
need mkfs.btrfs btrfs-progs

# Sessions live in this run's own state directory; on exit every one left
# is unpublished by its ID, then cleaned up.
unpublish_all() {
	local id
	[[ -n ${HF:-} && -x ${HF:-} ]] || return 0
	for id in $("$HF" publish list --json --state-dir "$STATE" 2>/dev/null | jq -r '.[].id'); do
		"$HF" unpublish "$id" --state-dir "$STATE" >&2 || true
	done
	"$HF" publish cleanup --state-dir "$STATE" >&2 || true
}
EXTRA_CLEANUP=unpublish_all
setup_workdir holdfast-publish-bench
STATE=$WORK/state
export HOLDFAST_REPOSITORY=$WORK/repo
log "work dir $WORK, file size $SIZE"
need_space $(((3 * SIZE_BYTES + (1 << 30)) / 1024))

HF=$WORK/holdfast
holdfast_binary "$HF"

# --- the VM's disk ---------------------------------------------------------------------
SRC=$WORK/src
mkdir -p "$SRC/ext4" "$SRC/xfs" "$SRC/btrfs"
head -c "$SIZE_BYTES" /dev/urandom >"$SRC/ext4/big.bin"
for d in xfs btrfs; do printf 'small file on %s\n' "$d" >"$SRC/$d/readme.txt"; done
EXT4_MIB=$(((SIZE_BYTES >> 20) + SIZE_BYTES / 10 / 1048576 + 64))
IMG=$WORK/disk.img
log "building the disk image (ext4 ${EXT4_MIB} MiB, xfs 300 MiB, btrfs 128 MiB)"
truncate -s $(((EXT4_MIB + 300 + 128 + 2) << 20)) "$IMG"
printf 'label: gpt\nstart=2048, size=%d, type=linux\nsize=%d, type=linux\nsize=%d, type=linux\n' \
	$((EXT4_MIB << 11)) $((300 << 11)) $((128 << 11)) | sfdisk -q "$IMG"
mkfs.ext4 -q -F -d "$SRC/ext4" -E offset=$((1 << 20)) "$IMG" "${EXT4_MIB}M"
for fs in xfs btrfs; do
	part=$WORK/$fs.part
	if [[ $fs == xfs ]]; then
		off=$(((1 + EXT4_MIB) << 20)) size=300
		truncate -s "${size}M" "$part"
		printf '/dev/null\n0 0\nd--755 0 0\nreadme.txt ---644 0 0 %s\n$\n' "$SRC/xfs/readme.txt" >"$WORK/xfs.proto"
		mkfs.xfs -q -f -p "$WORK/xfs.proto" "$part"
	else
		off=$(((1 + EXT4_MIB + 300) << 20)) size=128
		truncate -s "${size}M" "$part"
		mkfs.btrfs -q -f -r "$SRC/btrfs" "$part"
	fi
	dd if="$part" of="$IMG" bs=4M seek="$off" oflag=seek_bytes conv=notrunc,sparse status=none
	rm -f "$part"
done
"$HF" repo init >/dev/null
measure backup "$HF" backup --json --name vm1 "$IMG"
POINT=$(jq -r .point "$WORK/backup.out")
DATA_BYTES=$(jq -r '.disks[0].bytes_read' "$WORK/backup.out")
log "point $POINT, $(mib "$DATA_BYTES") MiB of data on the disk"

# publish_once NAME: publish --json (timed); sets SID and MNT (the ext4 mount).
publish_once() {
	msecs "$1" "$HF" publish "$POINT" --json --state-dir "$STATE"
	SID=$(jq -r .id "$WORK/$1.out")
	MNT=$(jq -r '.filesystems[] | select(.fstype == "ext4") | .mountpoint' "$WORK/$1.out")
	local n
	n=$(jq '[.filesystems[] | select(.mountpoint != null and .mountpoint != "")] | length' "$WORK/$1.out")
	[[ $n == 3 && -d $MNT ]] || die "$1: $n filesystems mounted: $(cat "$WORK/$1.out")"
}

# --- part 1: publish start-up -----------------------------------------------------------
log "=== part 1: publish until three filesystems are mounted, $REPEAT rounds"
pub_ms=() unpub_ms=()
for ((r = 1; r <= REPEAT; r++)); do
	publish_once "publish.$r"
	[[ -f $MNT/big.bin ]] || die "big.bin not in $MNT"
	msecs "unpublish.$r" "$HF" unpublish "$SID" --state-dir "$STATE"
	pub_ms+=("${MS[publish.$r]}") unpub_ms+=("${MS[unpublish.$r]}")
	log "  round $r: publish ${MS[publish.$r]} ms, unpublish ${MS[unpublish.$r]} ms"
done
read -r p_best p_med < <(stats "${pub_ms[@]}")
read -r u_best u_med < <(stats "${unpub_ms[@]}")

# --- part 2: sequential read --------------------------------------------------------------
log "=== part 2: sequential read, $SEQ_REPEAT rounds"
dd_s=() cp_s=() rest_s=()
for ((r = 1; r <= SEQ_REPEAT; r++)); do
	rm -f "$WORK/restored.img" "$WORK/copied.bin"
	sync
	measure "restore.$r" "$HF" restore "$POINT" --disk 0 --to "$WORK/restored.img"
	rest_s+=("${T[restore.$r]}")
	rm -f "$WORK/restored.img"
	sync
	publish_once "seq.$r"
	measure "dd.$r" dd if="$MNT/big.bin" of=/dev/null bs=4M
	dd_s+=("${T[dd.$r]}")
	"$HF" unpublish "$SID" --state-dir "$STATE" >/dev/null
	publish_once "seqcp.$r"
	measure "cp.$r" cp "$MNT/big.bin" "$WORK/copied.bin"
	cmp "$MNT/big.bin" "$SRC/ext4/big.bin" || die "the published file differs from the source"
	cp_s+=("${T[cp.$r]}")
	"$HF" unpublish "$SID" --state-dir "$STATE" >/dev/null
	rm -f "$WORK/copied.bin"
done
read -r r_best r_med < <(stats "${rest_s[@]}")
read -r d_best d_med < <(stats "${dd_s[@]}")
read -r c_best c_med < <(stats "${cp_s[@]}")
r_tp=$(mibps "$DATA_BYTES" "$r_med")
d_tp=$(mibps "$SIZE_BYTES" "$d_med")
c_tp=$(mibps "$SIZE_BYTES" "$c_med")

cat <<EOF
### Publish: three filesystems (ext4, xfs, btrfs on one GPT disk) mounted read-only, $(date -u +%Y-%m-%d)

\`$(printf '%s ' SIZE="$SIZE" REPEAT="$REPEAT" SEQ_REPEAT="$SEQ_REPEAT")bench/publish.sh\` on $(machine_line); $(holdfast_version_line).

| Step | Best (ms) | Median (ms) | All rounds (ms) |
| --- | ---: | ---: | --- |
| \`publish POINT --json\` (FUSE, loop, partx, blkid ×4, 3 mounts; returns when mounted) | $p_best | $p_med | ${pub_ms[*]} |
| \`unpublish ID\` (3 umounts, partx -d, losetup -d, FUSE unmount, process ends) | $u_best | $u_med | ${unpub_ms[*]} |

| Sequential read ($SIZE file, fresh publish each round) | Median (s) | MiB/s | Ratio to restore |
| --- | ---: | ---: | ---: |
| \`holdfast restore POINT --disk 0 --to FILE\` ($(mib "$DATA_BYTES") MiB of data) | $r_med | $r_tp | 1.00 |
| \`dd if=MOUNT/big.bin of=/dev/null bs=4M\` | $d_med | $d_tp | $(ratio "$d_tp" "$r_tp") |
| \`cp MOUNT/big.bin FILE\` | $c_med | $c_tp | $(ratio "$c_tp" "$r_tp") |

| Check | Value | Target | Result |
| --- | ---: | --- | --- |
| publish median (ms) | $p_med | < 2000 | $(passfail lt "$p_med" 2000) |
| published read / restore (dd) | $(ratio "$d_tp" "$r_tp") | ≥ 0.5 | $(passfail le 0.5 "$(ratio "$d_tp" "$r_tp")") |

$(load_note)
EOF
