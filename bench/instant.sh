#!/usr/bin/env bash
# Benchmark of Instant VM Recovery (issue 5): restore points served over NBD
# (and NFS) by `holdfast instant-recovery`. Prints Markdown tables for
# docs/performance.md on stdout; progress goes to stderr.
#
#   bench/instant.sh                         # 1 GiB data, 1 TiB sparse disk: ~4 min on an idle 2-core machine
#   SIZE=128M BIG=64G REPEAT=2 SEQ_REPEAT=1 READS=2000 BOOT_ROUNDS=1 bench/instant.sh   # quick check
#   KEEP=1 BENCH_DIR=/var/tmp/hi bench/instant.sh
#
# 1. Start-up: `instant-recovery start POINT --json` returns once the
#    exports answer; its wall time for a SIZE image of random data and for
#    a BIG sparse image holding the same SIZE of data (EXTENTS pieces spread
#    over the disk), REPEAT rounds each (alternating), best and median.
# 2. Sequential read: `nbdcopy nbd://… FILE` from a fresh session (cold chunk
#    cache) against `holdfast restore POINT --to FILE` of the same point,
#    SEQ_REPEAT rounds. The repository's chunk files stay in the kernel's page
#    cache for both (dropping it needs root and would hit other work on the
#    machine), so both read the repository from memory.
# 3. Random reads: bench/nbdrand (holdfast's own NBD client) reads a REGION
#    of the export once (warm-up), then READS random aligned 4 KiB reads in
#    it, from each of CONNS connections counts; p50/p90/p99 latency.
# 4. Boot: BenchmarkInstantBoot (cmd/holdfast) boots the tiny guest from a
#    local image, from the NBD export and (as root with port 111 free) from
#    the NFS export, BOOT_ROUNDS times each; median times and ratios.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-1G}               # data in both images (random, incompressible)
BIG=${BIG:-1T}                 # virtual size of the sparse image
EXTENTS=${EXTENTS:-8}          # the sparse image's data, in this many pieces
REPEAT=${REPEAT:-5}            # part 1 rounds
SEQ_REPEAT=${SEQ_REPEAT:-3}    # part 2 rounds
READS=${READS:-20000}          # part 3 random reads per run
REGION=${REGION:-256M}         # part 3 region (warmed, then read at random)
CONNS=${CONNS:-"1 4"}          # part 3 connection counts
RAND_CACHE=${RAND_CACHE:-512}  # part 3 session's --cache (MiB per disk)
BOOT_ROUNDS=${BOOT_ROUNDS:-3}  # part 4 boots per source
PARTS=${PARTS:-"1 2 3 4"}
KEEP=${KEEP:-0}
export HOLDFAST_PASSWORD=${HOLDFAST_PASSWORD:-bench-password}

SIZE_BYTES=$(to_bytes "$SIZE")
BIG_BYTES=$(to_bytes "$BIG")
REGION_BYTES=$(to_bytes "$REGION")
((SIZE_BYTES >= 16 << 20)) || die "SIZE must be at least 16M"
((BIG_BYTES >= 2 * SIZE_BYTES)) || die "BIG must be at least twice SIZE"
((REGION_BYTES <= SIZE_BYTES)) || REGION_BYTES=$SIZE_BYTES
EXT_BYTES=$((SIZE_BYTES / EXTENTS))
((EXT_BYTES % (1 << 20) == 0)) || die "SIZE / EXTENTS must be a multiple of 1 MiB"
has_part() { [[ " $PARTS " == *" $1 "* ]]; }

need go golang-go
need /usr/bin/time time
need jq jq
need nbdcopy libnbd-bin
need nbdinfo libnbd-bin
need cmp diffutils

# --- work dir, sessions ----------------------------------------------------------
# Sessions live in this run's own state directory; on exit every one still
# serving there is stopped (by its ID) and its redo data discarded.
stop_sessions() {
	[[ -x ${HF:-} && -d ${HOLDFAST_STATE_DIR:-/nonexistent} ]] || return 0
	local id
	for id in $("$HF" instant-recovery list --json 2>/dev/null | jq -r '.[] | select(.stopped == null or (.stopped | startswith("0001"))) | .id' 2>/dev/null); do
		log "stopping session $id"
		"$HF" instant-recovery stop "$id" --discard --force >/dev/null 2>&1 || true
	done
}
# shellcheck disable=SC2034 # read by cleanup_workdir in lib.sh
EXTRA_CLEANUP=stop_sessions
setup_workdir holdfast-instant-bench
export HOLDFAST_STATE_DIR=$WORK/state HOLDFAST_REPOSITORY=$WORK/repo
log "work dir $WORK; $SIZE of data, sparse disk $BIG in $EXTENTS pieces; parts $PARTS"

need_kb=$((SIZE_BYTES * 5 / 1024 + (256 << 10)))
need_space "$need_kb"

HF=$WORK/holdfast
holdfast_binary "$HF"
(cd "$REPO_ROOT" && go build -o "$WORK/nbdrand" ./bench/nbdrand) >&2 || die "go build ./bench/nbdrand failed"



# start_session NAME POINT [ARGS…]: instant-recovery start --json (timed),
# sets SID and URL (disk 0's NBD URL).
start_session() {
	local name=$1 point=$2
	shift 2
	msecs "$name" "$HF" instant-recovery start "$point" --nbd "127.0.0.1:$(free_port)" --json "$@"
	SID=$(jq -r .id "$WORK/$name.out")
	SPID=$(jq -r .pid "$WORK/$name.out")
	URL=$(jq -r '.disks[0].nbd_url' "$WORK/$name.out")
	[[ $SID == ir-* && $URL == nbd://* ]] || die "$name: start printed $(cat "$WORK/$name.out")"
}
stop_session() { "$HF" instant-recovery stop "$1" --discard --force >/dev/null; }
# srv_cpu: CPU seconds the session's serving process (SPID) used so far.
srv_cpu() { awk -v hz="$CLK_TCK" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$SPID/stat" 2>/dev/null || echo 0; }

# --- images and backups ------------------------------------------------------------
"$HF" repo init >"$WORK/init.out"
SMALL=$WORK/small.img BIGIMG=$WORK/big.img
log "writing $SIZE of random data to $SMALL and the same pieces into sparse $BIG $BIGIMG"
head -c "$SIZE_BYTES" /dev/urandom >"$SMALL"
truncate -s "$BIG_BYTES" "$BIGIMG"
STRIDE=$((BIG_BYTES / EXTENTS / (1 << 20) * (1 << 20)))
for ((i = 0; i < EXTENTS; i++)); do
	dd if="$SMALL" of="$BIGIMG" bs=1M skip=$((i * EXT_BYTES >> 20)) seek=$((i * STRIDE >> 20)) \
		count=$((EXT_BYTES >> 20)) conv=notrunc,sparse status=none
done
measure backup_small "$HF" backup --name small --json "$SMALL"
measure backup_big "$HF" backup --name big --json "$BIGIMG"
P_SMALL=$(jq -r .point "$WORK/backup_small.out")
P_BIG=$(jq -r .point "$WORK/backup_big.out")
CHUNK=$(jq -r '.disks[0].chunk_size' "$WORK/backup_small.out")
log "points: small $P_SMALL, big $P_BIG (chunk size $CHUNK)"
sync

cat <<EOF
## Instant VM Recovery (issue 5)

Machine: $(machine_line); $(holdfast_version_line); QEMU $(qemu-system-x86_64 --version 2>/dev/null | awk 'NR == 1 { print $4 }'), $(nbdcopy --version 2>/dev/null | head -n 1).
Data: $SIZE of random (incompressible) data as a raw image, and the same data in $EXTENTS pieces spread over a sparse $BIG raw image; one repository, chunk size $((CHUNK >> 10)) KiB.

EOF

# --- part 1: start-up time vs disk size ---------------------------------------------
if has_part 1; then
	log "=== part 1: instant-recovery start, $REPEAT rounds per disk"
	small_ms=() big_ms=()
	for ((r = 1; r <= REPEAT; r++)); do
		order=(small big)
		((r % 2 == 0)) && order=(big small)
		for d in "${order[@]}"; do
			if [[ $d == small ]]; then pt=$P_SMALL; else pt=$P_BIG; fi
			start_session "start_$d.$r" "$pt"
			# The command returned: the export must answer at once.
			nbdinfo --size "$URL" >"$WORK/start_$d.$r.size" || die "export $URL does not answer after start"
			stop_session "$SID"
			if [[ $d == small ]]; then small_ms+=("${MS[start_$d.$r]}"); else big_ms+=("${MS[start_$d.$r]}"); fi
			log "  round $r $d: ${MS[start_$d.$r]} ms (size $(cat "$WORK/start_$d.$r.size"))"
		done
	done
	read -r s_best s_med < <(stats "${small_ms[@]}")
	read -r b_best b_med < <(stats "${big_ms[@]}")
	cat <<EOF
### Start-up: \`instant-recovery start POINT --json\` until the exports answer ($SIZE vs $BIG sparse, $REPEAT rounds each)

\`$(printf '%s ' SIZE="$SIZE" BIG="$BIG" REPEAT="$REPEAT")bench/instant.sh\` — wall time of the command, which returns once the NBD export answers (checked with \`nbdinfo --size\` right after).

| Disk | Virtual size | Backup (s) | Start best (ms) | Start median (ms) | All rounds (ms) |
| --- | ---: | ---: | ---: | ---: | --- |
| raw, $SIZE random | $(mib "$SIZE_BYTES") MiB | ${T[backup_small]} | $s_best | $s_med | ${small_ms[*]} |
| sparse $BIG, same $SIZE | $(mib "$BIG_BYTES") MiB | ${T[backup_big]} | $b_best | $b_med | ${big_ms[*]} |

| Check | Value | Target | Result |
| --- | ---: | --- | --- |
| start median, $SIZE disk (ms) | $s_med | < 1000 | $(passfail lt "$s_med" 1000) |
| start median, $BIG disk (ms) | $b_med | < 1000 | $(passfail lt "$b_med" 1000) |
| ratio $BIG / $SIZE (median) | $(ratio "$b_med" "$s_med") | ≈ 1 (independent of size; ≤ 1.5) | $(passfail le "$(ratio "$b_med" "$s_med")" 1.5) |

EOF
fi

# --- part 2: sequential read through NBD vs restore -----------------------------------
if has_part 2; then
	log "=== part 2: sequential read, $SEQ_REPEAT rounds"
	nbd_s=() nbdnull_s=() rest_s=() rest_cpu=() nbd_cpu=() null_cpu=()
	for ((r = 1; r <= SEQ_REPEAT; r++)); do
		rm -f "$WORK/restored.img" "$WORK/copied.img"
		sync
		measure "restore.$r" "$HF" restore "$P_SMALL" --disk 0 --to "$WORK/restored.img"
		rest_s+=("${T[restore.$r]}") rest_cpu+=("${CPU[restore.$r]}")
		rm -f "$WORK/restored.img"
		sync
		start_session "seqstart.$r" "$P_SMALL"
		c0=$(srv_cpu)
		measure "nbdcopy.$r" nbdcopy "$URL" "$WORK/copied.img"
		nbd_s+=("${T[nbdcopy.$r]}")
		nbd_cpu+=("$(awk -v a="$c0" -v b="$(srv_cpu)" -v c="${CPU[nbdcopy.$r]}" 'BEGIN { printf "%.2f", b - a + c }')")
		stop_session "$SID"
		if ((r == 1)); then cmp "$SMALL" "$WORK/copied.img" || die "the NBD export differs from the image"; fi
		rm -f "$WORK/copied.img"
		start_session "seqstart_null.$r" "$P_SMALL"
		c0=$(srv_cpu)
		measure "nbdnull.$r" nbdcopy "$URL" null:
		nbdnull_s+=("${T[nbdnull.$r]}")
		null_cpu+=("$(awk -v a="$c0" -v b="$(srv_cpu)" -v c="${CPU[nbdnull.$r]}" 'BEGIN { printf "%.2f", b - a + c }')")
		stop_session "$SID"
	done
	# The serving process is "other" during nbdcopy; only restore's rounds
	# tell how busy the machine was with foreign work.
	mapfile -t seq_keys < <(for ((r = 1; r <= SEQ_REPEAT; r++)); do echo "restore.$r"; done)
	read -r r_best r_med < <(stats "${rest_s[@]}")
	read -r n_best n_med < <(stats "${nbd_s[@]}")
	read -r z_best z_med < <(stats "${nbdnull_s[@]}")
	r_tp=$(mibps "$SIZE_BYTES" "$r_best") n_tp=$(mibps "$SIZE_BYTES" "$n_best") z_tp=$(mibps "$SIZE_BYTES" "$z_best")
	cat <<EOF
### Sequential read: \`nbdcopy\` from a fresh session vs \`holdfast restore\` ($SIZE random image, $SEQ_REPEAT rounds)

\`$(printf '%s ' SIZE="$SIZE" SEQ_REPEAT="$SEQ_REPEAT")bench/instant.sh\` — every NBD round starts a new session (cold chunk cache, default \`--cache 256\`); the repository's chunk files are in the kernel's page cache for both sides (not dropped: that needs root and disturbs the machine). Throughput from the best round; CPU of the NBD rows is nbdcopy's plus the serving process's during the copy.

| Reader | Best (s) | Median (s) | MiB/s (best) | Ratio to restore | CPU median (s) |
| --- | ---: | ---: | ---: | ---: | ---: |
| \`holdfast restore POINT --to FILE\` | $r_best | $r_med | $r_tp | 1.00 | $(stats "${rest_cpu[@]}" | awk '{ print $2 }') |
| \`nbdcopy nbd://… FILE\` | $n_best | $n_med | $n_tp | $(ratio "$n_tp" "$r_tp") | $(stats "${nbd_cpu[@]}" | awk '{ print $2 }') |
| \`nbdcopy nbd://… null:\` | $z_best | $z_med | $z_tp | $(ratio "$z_tp" "$r_tp") | $(stats "${null_cpu[@]}" | awk '{ print $2 }') |

| Check | Value | Target | Result |
| --- | ---: | --- | --- |
| NBD → file / restore throughput | $(ratio "$n_tp" "$r_tp") | ≥ 0.50 | $(passfail le 0.5 "$(ratio "$n_tp" "$r_tp")") |

$(load_note "${seq_keys[@]}") (During nbdcopy the session's own serving process is the other CPU user.)

EOF
fi

# --- part 3: warm random 4 KiB reads ---------------------------------------------------
if has_part 3; then
	log "=== part 3: random reads, $READS per run, region $REGION, conns $CONNS"
	start_session randstart "$P_SMALL" --cache "$RAND_CACHE"
	rows="" checks=""
	for c in $CONNS; do
		msecs "rand.$c" "$WORK/nbdrand" -url "$URL" -region "$REGION_BYTES" -n "$READS" -conns "$c" -block 4096
		o=$WORK/rand.$c.out
		log "  $c connection(s): $(jq -c '{p50_ms, p90_ms, p99_ms, iops, warm_mib_per_s}' "$o")"
		rows+="| $c | $(jq -r '[.reads, (.iops | round), .p50_ms, .p90_ms, .p99_ms, .p999_ms, .max_ms, (.warm_mib_per_s | round)] | map(tostring) | join(" | ")' "$o") |"$'\n'
		p50=$(jq .p50_ms "$o")
		checks+="| p50, $c connection(s) (ms) | $p50 | < 1 | $(passfail lt "$p50" 1) |"$'\n'
	done
	stop_session "$SID"
	cat <<EOF
### Random 4 KiB reads through NBD, warm cache ($(mib "$REGION_BYTES") MiB region, $READS reads)

\`$(printf '%s ' READS="$READS" REGION="$REGION" CONNS="\"$CONNS\"")bench/instant.sh\` — \`bench/nbdrand\` (holdfast's NBD client, one request at a time per connection) reads the region once sequentially (1 MiB requests: the warm-up column), then makes random 4 KiB-aligned 4 KiB reads in it, spread over the connections; the session runs with \`--cache $RAND_CACHE\` so the region fits the chunk cache.

| Connections | Reads | IOPS | p50 (ms) | p90 (ms) | p99 (ms) | p99.9 (ms) | max (ms) | Warm-up MiB/s |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows}
| Check | Value | Target | Result |
| --- | ---: | --- | --- |
${checks}
EOF
fi

# --- part 4: boot from the export vs a local image --------------------------------------
if has_part 4; then
	log "=== part 4: BenchmarkInstantBoot, $BOOT_ROUNDS rounds"
	bcmd=(go test ./cmd/holdfast -run '^$' -bench '^BenchmarkInstantBoot$' -benchtime "${BOOT_ROUNDS}x" -v)
	(cd "$REPO_ROOT" && "${bcmd[@]}") >"$WORK/boot.out" 2>&1 || { tail -n 40 "$WORK/boot.out" >&2; die "BenchmarkInstantBoot failed"; }
	line=$(grep -E '^BenchmarkInstantBoot' "$WORK/boot.out" | grep 'local-s' | tail -n 1)
	[[ -n $line ]] || { cat "$WORK/boot.out" >&2; die "BenchmarkInstantBoot reported nothing (skipped?)"; }
	metric() { awk -v u="$1" '{ for (i = 2; i <= NF; i++) if ($i == u) print $(i - 1) }' <<<"$line"; }
	l=$(metric local-s) nb=$(metric nbd-s) nr=$(metric nbd/local) nf=$(metric nfs-s) nfr=$(metric nfs/local)
	# times WHAT: the single boots' durations (Go's 3.034s / 950ms) in seconds.
	times() {
		# go test runs b.N=1 first, then BOOT_ROUNDS: the last rounds count.
		grep -o "boot from the $1: [0-9.]*m*s" "$WORK/boot.out" | tail -n "$BOOT_ROUNDS" |
			awk '{ v = $NF; if (v ~ /ms$/) { sub(/ms$/, "", v); v /= 1000 } else sub(/s$/, "", v); printf "%s%.3f", (NR > 1 ? " " : ""), v } END { print "" }'
	}
	cat <<EOF
### Boot of the tiny guest: NBD/NFS export vs local image (median of $BOOT_ROUNDS boots each)

\`go test ./cmd/holdfast -run '^\$' -bench '^BenchmarkInstantBoot\$' -benchtime ${BOOT_ROUNDS}x -v\` (run by \`BOOT_ROUNDS=$BOOT_ROUNDS bench/instant.sh\`) — QEMU TCG, 256 MiB, the guest's 64 MiB ext4 disk; time from QEMU's start to the guest's \`HOLDFAST-DONE\` (mounted, read, wrote, synced, unmounted); a fresh session (cold cache) for every boot from the backup.

| Source | Median (s) | Boots (s) | Ratio to local |
| --- | ---: | --- | ---: |
| local raw image | $l | $(times "local image") | 1.00 |
| NBD export | $nb | $(times "NBD export") | $nr |
EOF
	if [[ -n $nf ]]; then
		echo "| NFS export (QEMU nfs://) | $nf | $(times "NFS export") | $nfr |"
	else
		echo "| NFS export | — | skipped: needs root and a free port 111 | — |"
	fi
	cat <<EOF

| Check | Value | Target | Result |
| --- | ---: | --- | --- |
| NBD boot / local boot | $nr | ≤ 1.5 | $(passfail le "$nr" 1.5) |
EOF
	[[ -z $nf ]] || echo "| NFS boot / local boot | $nfr | ≤ 1.5 | $(passfail le "$nfr" 1.5) |"
	echo
fi
log "done"
