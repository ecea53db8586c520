#!/usr/bin/env bash
# Benchmark of the malware scan (issue 12): `holdfast scan POINT` (publish the
# point read-only through FUSE and loop devices, clamscan every mounted
# filesystem, unpublish, record) against `clamscan` of the same files on local
# disk. Prints a Markdown table for docs/performance.md on stdout; progress
# goes to stderr. Needs root (publish) and clamav (sigtool, clamscan).
#
#   bench/scan.sh                              # 512 MiB in 2048 files, 3 rounds: ~2 min on an idle 2-core machine
#   FILES=200 FILE_SIZE=256K REPEAT=1 bench/scan.sh   # quick check
#   KEEP=1 BENCH_DIR=/var/tmp/hs bench/scan.sh
#
# The files are random (incompressible) with one EICAR file among them, in a
# 1 MiB-aligned GPT partition of ext4 (mkfs.ext4 -d). The ClamAV database is
# a test database made with `sigtool --md5` (no signature download is
# possible here), so clamscan's own work per byte is small and the ratio
# shows the read path's cost (FUSE → restorefs → repository) at its largest;
# a full signature database adds the same engine time to both sides.
# Both sides run with a warm page cache (the local files, the repository's
# chunk files): best of REPEAT rounds, alternating.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

FILES=${FILES:-2048}
FILE_SIZE=${FILE_SIZE:-256K}
REPEAT=${REPEAT:-3}
KEEP=${KEEP:-0}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}

[[ $(id -u) -eq 0 ]] || die "run as root: holdfast scan publishes the point (loop devices, mounts)"
[[ -e /dev/fuse ]] || die "no /dev/fuse"
need go golang-go
need /usr/bin/time time
need jq jq
need clamscan clamav
need sigtool clamav
need sfdisk fdisk
need mkfs.ext4 e2fsprogs

FILE_BYTES=$(to_bytes "$FILE_SIZE")
DATA_BYTES=$((FILES * FILE_BYTES))

setup_workdir holdfast-scan-bench
export HOLDFAST_REPOSITORY=$WORK/repo
need_space $((DATA_BYTES * 4 / 1024 + (256 << 10)))
log "work dir $WORK; $FILES files of $FILE_SIZE"

HF=$WORK/holdfast
holdfast_binary "$HF"

# --- data: files on local disk, the same files in an ext4 image -------------
SRC=$WORK/files
mkdir -p "$SRC/eicar" "$WORK/db"
printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$WORK/eicar.com"
(cd "$WORK" && sigtool --md5 eicar.com >"$WORK/db/test.hdb")
cp "$WORK/eicar.com" "$SRC/eicar/eicar.com"
log "writing $FILES random files"
for ((i = 0; i < FILES; i++)); do
	d=$SRC/d$((i / 256))
	mkdir -p "$d"
	head -c "$FILE_BYTES" /dev/urandom >"$d/f$i"
done
FS_MIB=$((DATA_BYTES * 12 / 10 / 1048576 + 64))
IMG=$WORK/disk.img
truncate -s $(((FS_MIB + 2) << 20)) "$IMG"
printf 'label: gpt\nstart=2048, size=%d, type=linux\n' $((FS_MIB * 2048)) | sfdisk -q "$IMG"
mkfs.ext4 -q -F -d "$SRC" -E offset=1048576 "$IMG" "${FS_MIB}M"
"$HF" repo init >/dev/null
POINT=$("$HF" backup --json --name scan-bench "$IMG" | jq -r .point)
log "point $POINT"

# --- measure -------------------------------------------------------------------
best_local="" best_hf=""
for ((r = 1; r <= REPEAT; r++)); do
	# clamscan exits 1 (found): run it through sh so measure sees success.
	measure "local$r" sh -c 'clamscan -r -i --no-summary -d "$1" "$2"; [ $? -eq 1 ]' sh "$WORK/db" "$SRC"
	measure "holdfast$r" sh -c '"$1" scan "$2" --clamav-db "$3" --json > "$4"; [ $? -eq 1 ]' sh "$HF" "$POINT" "$WORK/db" "$WORK/scan$r.json"
	if [[ -z $best_local ]] || lt "${T[local$r]}" "$best_local"; then best_local=${T[local$r]}; fi
	if [[ -z $best_hf ]] || lt "${T[holdfast$r]}" "$best_hf"; then best_hf=${T[holdfast$r]}; fi
done
grep -q 'EICAR\|eicar' "$WORK/local1.out" || die "clamscan did not find the EICAR file"
[[ $(jq -r '.findings[0].path' "$WORK/scan1.json") == /eicar/eicar.com ]] || die "holdfast scan did not find /eicar/eicar.com"

r=$(ratio "$best_hf" "$best_local")
echo "### Malware scan: \`holdfast scan\` vs \`clamscan\` of the same files on local disk ($FILES files of $FILE_SIZE, $(mib "$DATA_BYTES") MiB, best of $REPEAT), $(date +%Y-%m-%d)"
echo
echo "$(machine_line); $(holdfast_version_line); $(clamscan --version)"
echo
echo "| | wall s | CPU s | peak RSS MiB |"
echo "|---|---:|---:|---:|"
echo "| clamscan -r -i -d DB DIR (local files) | $best_local | ${CPU[local1]} | $(kib2mib "${RSS[local1]}") |"
echo "| holdfast scan POINT --clamav-db DB (publish + scan + unpublish + record) | $best_hf | ${CPU[holdfast1]} | $(kib2mib "${RSS[holdfast1]}") |"
echo
echo "Ratio holdfast / local: **$r** (target ≤ 1.2: $(passfail le "$r" 1.2)). Of the first holdfast run, $(jq -r '.duration_seconds * 100 | round / 100' "$WORK/scan1.json") s was clamscan over the published filesystem; the rest is opening the repository, publish, unpublish and recording the result."
echo
load_note
