#!/usr/bin/env bash
# Benchmark of the QEMU source (issue: incremental with changed block
# tracking) and of the NBD client. Prints Markdown tables on stdout.
#
#   bench/qemu.sh                 # 2 GiB qcow2 disk in a paused TCG VM
#   SIZE=512M bench/qemu.sh
#
# 1. A qcow2 disk holding real files (a tar stream of /usr/share and /usr/lib),
#    incompressible data and free space is attached to qemu-system-x86_64.
# 2. Full backup through qemu:// (each transport), then 1 % of the disk is
#    changed with guest writes (HMP qemu-io through QMP, bench/qmpwrite),
#    then an incremental backup: time ratio and bytes read vs the changed
#    bytes rounded out to chunks.
# 3. NBD client read throughput from qemu-nbd on loopback vs nbdcopy
#    (go test -bench in internal/nbd, same export, same request size).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-2G}
CHANGE_PCT=${CHANGE_PCT:-1}
CHANGE_BLOCK=${CHANGE_BLOCK:-64K}       # size of each guest write
CHUNK=${CHUNK:-1M}                      # repository chunk size
TRANSPORTS=${TRANSPORTS:-"direct hotadd nbd"}
KEEP=${KEEP:-0}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}
SIZE_BYTES=$(to_bytes "$SIZE")

need go golang-go
need qemu-system-x86_64 qemu-system-x86
need qemu-img qemu-utils
need qemu-nbd qemu-utils
need nbdcopy libnbd-bin
need /usr/bin/time time
need jq jq

QPID=""
EXTRA_CLEANUP='[[ -n $QPID ]] && kill "$QPID" 2>/dev/null'
setup_workdir holdfast-qemu-bench

HF=$WORK/holdfast
build_holdfast "$HF"
(cd "$REPO_ROOT" && go build -o "$WORK/qmpwrite" ./bench/qmpwrite)

# --- the disk -----------------------------------------------------------------
log "building a $SIZE disk: real files, incompressible data, free space"
RAW=$WORK/disk.raw
truncate -s "$SIZE_BYTES" "$RAW"
# shellcheck disable=SC2086
{ tar -C / -cf - usr/share usr/lib 2>/dev/null || true; } | head -c $((SIZE_BYTES * 45 / 100)) |
	dd of="$RAW" conv=notrunc bs=1M iflag=fullblock status=none
{ head -c $((SIZE_BYTES * 15 / 100)) /dev/urandom || true; } |
	dd of="$RAW" conv=notrunc bs=1M seek=$((SIZE_BYTES * 50 / 100 / 1048576)) iflag=fullblock status=none
QCOW=$WORK/vm.qcow2
qemu-img convert -O qcow2 "$RAW" "$QCOW"
rm -f "$RAW"
DATA_BYTES=$(qemu-img map --output=json "$QCOW" | jq '[.[] | select(.data) | .length] | add')

SOCK=$WORK/qmp.sock
qemu-system-x86_64 -accel tcg -S -nodefaults -display none \
	-blockdev "driver=file,filename=$QCOW,node-name=proto0" \
	-blockdev driver=qcow2,file=proto0,node-name=disk0 \
	-device virtio-blk-pci,drive=disk0,id=vda \
	-qmp "unix:$SOCK,server=on,wait=off" >"$WORK/qemu.log" 2>&1 &
QPID=$!
for _ in $(seq 100); do [[ -S $SOCK ]] && break; sleep 0.1; done

rows=()
for tr in $TRANSPORTS; do
	REPO=$WORK/repo-$tr
	"$HF" repo init --repo "$REPO" --chunk-size "$CHUNK" >/dev/null
	measure "full-$tr" "$HF" backup --repo "$REPO" --name vm --json --transport "$tr" "qemu://$SOCK"
	full_read=$(jq '.disks[0].bytes_read' "$WORK/full-$tr.out")
	chunk=$(jq '.disks[0].chunk_size' "$WORK/full-$tr.out")
	"$WORK/qmpwrite" -qmp "$SOCK" -size "$SIZE_BYTES" -percent "$CHANGE_PCT" -block "$(to_bytes "$CHANGE_BLOCK")" -chunk "$chunk" -seed "$RANDOM" >"$WORK/change-$tr.json"
	changed=$(jq .changed_bytes "$WORK/change-$tr.json")
	rounded=$(jq .changed_rounded "$WORK/change-$tr.json")
	measure "inc-$tr" "$HF" backup --repo "$REPO" --name vm --json --transport "$tr" "qemu://$SOCK"
	inc_read=$(jq '.disks[0].bytes_read' "$WORK/inc-$tr.out")
	cbt=$(jq -r '.disks[0].cbt' "$WORK/inc-$tr.out")
	[[ $cbt == used ]] || die "incremental over $tr did not use CBT: $cbt"
	tr_ratio=$(ratio "${T[inc-$tr]}" "${T[full-$tr]}")
	rd_ratio=$(ratio "$inc_read" "$rounded")
	rows+=("| $tr | ${T[full-$tr]} | $(mib "$full_read") | ${T[inc-$tr]} | $(mib "$changed") | $(mib "$rounded") | $(mib "$inc_read") | $tr_ratio $(passfail le "$tr_ratio" 0.05) | $rd_ratio $(passfail le "$rd_ratio" 1.5) | $(kib2mib "${RSS[full-$tr]}") |")
done

log "NBD client vs nbdcopy (go test -bench, 1 GiB export from qemu-nbd)"
(cd "$REPO_ROOT" && go test -run '^$' -bench 'ClientRead|Nbdcopy' -benchtime 5x ./internal/nbd/) >"$WORK/nbdbench.txt"
ours=$(awk '/BenchmarkClientRead/ { for (i = 1; i <= NF; i++) if ($(i) == "MB/s") print $(i-1) }' "$WORK/nbdbench.txt")
theirs=$(awk '/BenchmarkNbdcopy/ { for (i = 1; i <= NF; i++) if ($(i) == "MB/s") print $(i-1) }' "$WORK/nbdbench.txt")
nbd_ratio=$(ratio "$ours" "$theirs")

cat <<OUT
### QEMU source: full vs incremental with dirty bitmaps ($SIZE qcow2 disk, $(mib "$DATA_BYTES") MiB allocated, ${CHANGE_PCT} % changed in $CHANGE_BLOCK guest writes at random aligned offsets, $CHUNK chunks)

$(machine_line)
Command: \`SIZE=$SIZE CHANGE_BLOCK=$CHANGE_BLOCK CHUNK=$CHUNK TRANSPORTS="$TRANSPORTS" bench/qemu.sh\`

| transport | full (s) | full read (MiB) | incremental (s) | changed (MiB) | changed, rounded to chunks (MiB) | incremental read (MiB) | time inc/full (≤ 0.05) | read / rounded (≤ 1.5) | peak RSS full (MiB) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |
$(printf '%s\n' "${rows[@]}")

### NBD client read throughput from qemu-nbd on TCP loopback (1 GiB raw export; ours: one connection, 4 MiB requests, 4 in flight; nbdcopy: its defaults)

| reader | MB/s |
| --- | ---: |
| nbdcopy (libnbd) | $theirs |
| holdfast internal/nbd client | $ours |
| ratio (≥ 0.80) | $nbd_ratio $(passfail le 0.80 "$nbd_ratio") |
OUT
