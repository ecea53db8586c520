#!/usr/bin/env bash
# Benchmark of the distributed mode (server + proxy + repository agent on one
# machine, loopback mutual TLS). Prints Markdown tables for
# docs/performance.md on stdout; progress goes to stderr.
#
#   bench/distributed.sh              # 1 GiB random image, 3 rounds: ~2 min on an idle 2-core machine
#   SIZE=256M REPEAT=1 bench/distributed.sh   # quick iteration
#   KEEP=1 BENCH_DIR=/var/tmp/hd bench/distributed.sh
#
# 1. Backup throughput: `job run --wait` of a one-VM job (proxy reads the
#    image, moves it to a repository agent over mutual TLS) against a
#    standalone `holdfast backup` of the same image into a local repository.
#    SIZE of incompressible random data; every round uses fresh repositories
#    on both sides, so deduplication never makes a later round free.
# 2. Server API under load: a job with VMS (1,000) VMs in the inventory, a
#    session of QUEUED (100) tasks waiting in the queue (the proxy is stopped
#    first, so nothing takes them), some sessions and points from part 1;
#    then bench/apiload sends REQUESTS GETs from CLIENTS concurrent clients
#    (admin token, server CA) and reports latency percentiles per path.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SIZE=${SIZE:-1G}
REPEAT=${REPEAT:-3}             # rounds of part 1; the table shows the best
PORT=${PORT:-}                  # the server listens on 127.0.0.1:PORT (default: a free port)
AGENT_TIMEOUT=${AGENT_TIMEOUT:-5s}
VMS=${VMS:-1000}                # VMs in the inventory job
QUEUED=${QUEUED:-100}           # tasks left waiting in the queue
REQUESTS=${REQUESTS:-2000}
CLIENTS=${CLIENTS:-8}
KEEP=${KEEP:-0}
PASSWORD=${PASSWORD:-bench-password}

SIZE_BYTES=$(to_bytes "$SIZE")
((SIZE_BYTES >= 16 << 20)) || die "SIZE must be at least 16M"

need go golang-go
need /usr/bin/time time
need jq jq

# --- work dir and background processes ----------------------------------------
PIDS=()
# stop_pids: end the daemons this script started (by PID), newest first.
stop_pids() {
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do wait "${PIDS[i]}" 2>/dev/null || true; done
	PIDS=()
}
EXTRA_CLEANUP=stop_pids
setup_workdir holdfast-dist-bench
log "work dir $WORK, image size $SIZE ($SIZE_BYTES bytes), $REPEAT rounds"

# Disk space: the image + two repositories of SIZE per round.
need_kb=$((SIZE_BYTES * (1 + 2 * REPEAT) / 1024 + (256 << 10)))
need_space "$need_kb"

HF=$WORK/holdfast
holdfast_binary "$HF"
(cd "$REPO_ROOT" && go build -o "$WORK/apiload" ./bench/apiload) >&2 || die "go build ./bench/apiload failed"

[[ -n $PORT ]] || PORT=$(free_port)
! port_busy "$PORT" || die "127.0.0.1:$PORT is in use; set PORT"

PW=$WORK/password
printf '%s\n' "$PASSWORD" >"$PW"
export HOLDFAST_PASSWORD=$PASSWORD

IMG=$WORK/disk.img
log "writing $SIZE of random data to $IMG"
head -c "$SIZE_BYTES" /dev/urandom >"$IMG"

# cpu_ticks PID...: user+system clock ticks the processes used so far.
cpu_ticks() {
	local p s=0 f
	for p in "$@"; do
		f=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
		s=$((s + f))
	done
	echo "$s"
}
ticks2s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }'; }

# wait_for DESC SECONDS CMD...: retry CMD every 0.1 s until it succeeds.
wait_for() {
	local desc=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "timed out waiting for $desc"
}

# --- server and proxy -----------------------------------------------------------
SRV=$WORK/server
log "starting the server on 127.0.0.1:$PORT"
"$HF" server --data-dir "$SRV" --listen "127.0.0.1:$PORT" --agent-timeout "$AGENT_TIMEOUT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for "the server's admin token" 20 test -s "$SRV/admin.token"
export HOLDFAST_SERVER=https://127.0.0.1:$PORT HOLDFAST_CA=$SRV/ca.pem
HOLDFAST_TOKEN=$(cat "$SRV/admin.token")
export HOLDFAST_TOKEN
wait_for "the server API" 20 "$HF" job list

log "starting proxy1"
HOLDFAST_JOIN_TOKEN=$("$HF" proxy token) "$HF" proxy --name proxy1 --state-dir "$WORK/proxy1" \
	--heartbeat 1s >"$WORK/proxy1.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_for "proxy1 to join" 20 grep -q 'taking tasks' "$WORK/proxy1.log"

# settle: flush earlier writes and put the image in the page cache for
# both sides alike.
settle() {
	sync
	cat "$IMG" >/dev/null
}

# --- part 1: backup throughput ---------------------------------------------------
declare -A DCPU=() PCPU=() SDUR=() DDUR=() SESS=() BNECK=()
REPO_PID=""
round() {
	local n=$1 name=repo-$1 s_repo=$WORK/round-$1/standalone-repo d_repo=$WORK/round-$1/agent-repo
	log "=== round $n of $REPEAT"
	mkdir -p "$WORK/round-$n"
	"$HF" repo init --repo "$s_repo" >"$WORK/round-$n/s-init.out" 2>&1 || die "repo init $s_repo failed"
	"$HF" repo init --repo "$d_repo" >"$WORK/round-$n/d-init.out" 2>&1 || die "repo init $d_repo failed"
	H_INIT=$(sed -n 's/.*(\(.*\)).*/\1/p' "$WORK/round-$n/s-init.out")
	# A new repository agent per round, on the fresh repository; the one of
	# the previous round stops (it stays registered on the server).
	if [[ -n $REPO_PID ]]; then kill "$REPO_PID" 2>/dev/null || true; wait "$REPO_PID" 2>/dev/null || true; fi
	HOLDFAST_JOIN_TOKEN=$("$HF" repository token) "$HF" repository --name "$name" --path "$d_repo" \
		>"$WORK/round-$n/agent.log" 2>&1 &
	REPO_PID=$!
	PIDS+=("$REPO_PID")
	wait_for "repository agent $name" 20 grep -q 'serving on' "$WORK/round-$n/agent.log"
	"$HF" job create "bench-$n" --vm "vm1=$IMG" --repository "$name" --password-file "$PW" >&2

	settle; measure "s_full.$n" "$HF" backup --repo "$s_repo" --name vm1 --json "$IMG"
	settle
	local c0 c1 p0=() p1=() p
	for p in "$SERVER_PID" "$PROXY_PID" "$REPO_PID"; do p0+=("$(cpu_ticks "$p")"); done
	c0=$(cpu_ticks "$SERVER_PID" "$PROXY_PID" "$REPO_PID")
	measure "d_full.$n" "$HF" job run "bench-$n" --wait --json
	c1=$(cpu_ticks "$SERVER_PID" "$PROXY_PID" "$REPO_PID")
	for p in "$SERVER_PID" "$PROXY_PID" "$REPO_PID"; do p1+=("$(cpu_ticks "$p")"); done
	PCPU[$n]="server $(ticks2s $((p1[0] - p0[0]))) s, proxy $(ticks2s $((p1[1] - p0[1]))) s, repository agent $(ticks2s $((p1[2] - p0[2]))) s"
	# CPU of the three daemons plus the job run client.
	DCPU[$n]=$(awk -v a="$(ticks2s $((c1 - c0)))" -v b="${CPU[d_full.$n]}" 'BEGIN { printf "%.2f", a + b }')

	local out=$WORK/d_full.$n.out
	[[ $(jq -r .status "$out") == success ]] || die "round $n: job run did not succeed: $(cat "$out")"
	[[ $(jq '.vms[0].disks[0].bytes_read' "$out") == "$SIZE_BYTES" ]] || die "round $n: proxy read $(jq '.vms[0].disks[0].bytes_read' "$out") bytes, want $SIZE_BYTES"
	[[ $(jq '.disks[0].bytes_new' "$WORK/s_full.$n.out") == "$SIZE_BYTES" ]] || die "round $n: standalone stored $(jq '.disks[0].bytes_new' "$WORK/s_full.$n.out") new bytes, want $SIZE_BYTES"
	SDUR[$n]=$(jq '.duration_seconds * 100 | round / 100' "$WORK/s_full.$n.out")
	DDUR[$n]=$(jq '.vms[0].disks[0].duration_seconds * 100 | round / 100' "$out")
	SESS[$n]=$(jq '.duration_seconds * 100 | round / 100' "$out")
	BNECK[$n]=$(jq -r '.bottleneck | "source \(.source), proxy \(.proxy), network \(.network), target \(.target) → \(.limit)"' "$out")
	log "  round $n: standalone ${T[s_full.$n]} s (backup says ${SDUR[$n]} s), distributed ${T[d_full.$n]} s end to end, session ${SESS[$n]} s, disk ${DDUR[$n]} s; bottleneck ${BNECK[$n]}; CPU ${PCPU[$n]}"
}
for ((rnd = 1; rnd <= REPEAT; rnd++)); do round "$rnd"; done

# --- part 2: API latency with a large inventory and a full queue -----------------
log "stopping proxy1 so the queued tasks stay queued"
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
# Let the server declare the proxy lost (heartbeat gone) before queueing.
sleep "$(awk -v t="${AGENT_TIMEOUT%s}" 'BEGIN { print t + 1 }')"

log "job with $VMS VMs (1 disk each) for the inventory"
# vm_args PREFIX COUNT: NUL-separated --vm flags in $WORK/PREFIX.args (xargs
# keeps the logged command line short; -x fails rather than split it).
vm_args() {
	local i
	for ((i = 1; i <= $2; i++)); do printf -- '--vm\0%s%04d=%s/%s/%s%04d.img\0' "$1" "$i" "$WORK" "$1" "$1" "$i"; done >"$WORK/$1.args"
}
vm_args inv "$VMS"
NO_WAIT=1 measure create_inventory xargs -0 -x -a "$WORK/inv.args" "$HF" job create inventory --repository "repo-$REPEAT" --password-file "$PW"
vm_args q "$QUEUED"
NO_WAIT=1 measure create_queued xargs -0 -x -a "$WORK/q.args" "$HF" job create queued --repository "repo-$REPEAT" --password-file "$PW"
NO_WAIT=1 measure run_queued "$HF" job run queued --json
QSID=$(jq .id "$WORK/run_queued.out")
[[ $QSID =~ ^[0-9]+$ ]] || die "job run queued printed no session id: $(cat "$WORK/run_queued.out")"
TOKEN_HDR=(-H "Authorization: Bearer $HOLDFAST_TOKEN")
session_json() { curl -sf --cacert "$HOLDFAST_CA" "${TOKEN_HDR[@]}" "$HOLDFAST_SERVER/api/v1/sessions/$QSID"; }
need curl curl
sleep 1
n_queued=$(session_json | jq '[.tasks[] | select(.state == "queued")] | length')
((n_queued == QUEUED)) || die "session $QSID has $n_queued queued tasks, want $QUEUED: $(session_json | jq -c '[.tasks[].state] | group_by(.) | map({(.[0]): length}) | add')"
N_INV=$(curl -sf --cacert "$HOLDFAST_CA" "${TOKEN_HDR[@]}" "$HOLDFAST_SERVER/api/v1/jobs/inventory" | jq '[.. | objects | select(has("vms")) | .vms | length] | first')
[[ $N_INV == "$VMS" ]] || die "job inventory lists $N_INV VMs, want $VMS"
JOBS_BYTES=$(curl -sf --cacert "$HOLDFAST_CA" "${TOKEN_HDR[@]}" "$HOLDFAST_SERVER/api/v1/jobs" | wc -c)
N_POINTS=$(curl -sf --cacert "$HOLDFAST_CA" "${TOKEN_HDR[@]}" "$HOLDFAST_SERVER/api/v1/points" | jq 'if type == "array" then length else (.items // .points // []) | length end')
N_AGENTS=$(curl -sf --cacert "$HOLDFAST_CA" "${TOKEN_HDR[@]}" "$HOLDFAST_SERVER/api/v1/agents" | jq 'if type == "array" then length else (.items // .agents // []) | length end')
log "state: $((VMS + QUEUED + REPEAT)) VMs in 2 + $REPEAT jobs, session $QSID with $n_queued queued tasks, $N_POINTS points, $N_AGENTS agents"

PATHS="/api/v1/jobs,/api/v1/sessions,/api/v1/sessions/$QSID,/api/v1/points,/api/v1/agents"
c0=$(cpu_ticks "$SERVER_PID")
measure apiload "$WORK/apiload" -n "$REQUESTS" -c "$CLIENTS" -paths "$PATHS"
c1=$(cpu_ticks "$SERVER_PID")
SERVER_CPU=$(ticks2s $((c1 - c0)))
AL=$WORK/apiload.out
n_after=$(session_json | jq '[.tasks[] | select(.state == "queued")] | length')
((n_after == QUEUED)) || log "WARNING: after the load $n_after tasks are queued, want $QUEUED"

# --- report ------------------------------------------------------------------------
over_rounds() { # ARRAY KEY min|median
	local -n arr=$1
	local i
	for ((i = 1; i <= REPEAT; i++)); do echo "${arr[$2.$i]:-${arr[$i]:-}}"; done | sort -g |
		awk -v m="$3" '{ v[NR] = $1 } END { print (m == "min") ? v[1] : v[int((NR + 1) / 2)] }'
}
best() { over_rounds T "$1" min; }
all() { # ARRAY KEY
	local -n arr=$1
	local i o=""
	for ((i = 1; i <= REPEAT; i++)); do o+="${o:+/}${arr[$2.$i]:-${arr[$i]:-}}"; done
	echo "$o"
}
rate() { awk -v b="$SIZE_BYTES" -v s="$1" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }
minof() { printf '%s\n' "$@" | sort -g | head -n 1; }

s_wall=$(best s_full) d_wall=$(best d_full)
s_disk=$(minof "${SDUR[@]}") d_disk=$(minof "${DDUR[@]}") d_sess=$(minof "${SESS[@]}")
s_rate=$(rate "$s_wall") d_rate=$(rate "$d_wall")
s_rate_d=$(rate "$s_disk") d_rate_d=$(rate "$d_disk")
r_wall=$(ratio "$d_rate" "$s_rate") r_disk=$(ratio "$d_rate_d" "$s_rate_d")
s_cpu=$(over_rounds CPU s_full median) d_cpu=$(over_rounds DCPU x median)
best_d=1
for ((i = 2; i <= REPEAT; i++)); do if lt "${T[d_full.$i]}" "${T[d_full.$best_d]}"; then best_d=$i; fi; done
ov() { jq -r ".overall.$1" "$AL"; }
p99=$(ov p99_ms)
s_keys=()
for ((i = 1; i <= REPEAT; i++)); do s_keys+=("s_full.$i"); done

cat <<OUT
### Distributed backup through proxy → repository agent vs standalone ($SIZE random image)

Machine: $(machine_line). $(holdfast_version_line).
Server, proxy (\`--slots 2\`, default workers) and repository agent on the same machine, talking over
loopback HTTPS with mutual TLS; SQLite configuration database. Image: $(mib "$SIZE_BYTES") MiB from
\`/dev/urandom\` (incompressible, no zero chunks). Repositories: $H_INIT.
$REPEAT rounds, each with fresh repositories on both sides (a new repository agent per round); wall times
are the best round, CPU the median. Page cache warm (the image is read once before each backup).
Command: \`SIZE=$SIZE REPEAT=$REPEAT bench/distributed.sh\`

| Metric | standalone \`backup\` | distributed \`job run --wait\` | distributed / standalone | Target | Result |
| --- | ---: | ---: | ---: | --- | --- |
| Throughput, end to end (MiB/s) ¹ | $s_rate | $d_rate | $r_wall | ≥ 0.80 | $(passfail le 0.80 "$r_wall") |
| Throughput, disk duration (MiB/s) ² | $s_rate_d | $d_rate_d | $r_disk | — | — |
| Wall time, end to end (s) | $s_wall | $d_wall | $(ratio "$d_wall" "$s_wall") | — | — |
| Session duration on the server (s) ⁴ | $s_disk | $d_sess | $(ratio "$d_sess" "$s_disk") | — | — |
| Disk duration (s) ² | $s_disk | $d_disk | $(ratio "$d_disk" "$s_disk") | — | — |
| CPU user+sys (s) ³ | $s_cpu | $d_cpu | $(ratio "$d_cpu" "$s_cpu") | — | — |

¹ standalone: the \`holdfast backup\` process (key derivation, read, chunk, hash, compress, encrypt,
store, commit); distributed: \`holdfast job run --wait\` from the request to the printed result
(queueing, dispatch to the proxy's long poll, mover session, commit of the point, session end).
² standalone: \`duration_seconds\` of \`backup --json\`; distributed: the disk's \`duration_seconds\`
in the job result (the proxy's task).
³ distributed: server + proxy + repository agent + the \`job run\` client during the run.
⁴ the result's \`duration_seconds\` (session start to end on the server; standalone: as ²). \`job run --wait\`
polls the session every 0.5 s, so the end-to-end time includes up to 0.5 s of waiting for the next poll.

Wall times per round (s), standalone | distributed: $(all T s_full) | $(all T d_full);
disk durations $(all SDUR x) | $(all DDUR x); session durations $(all SESS x).
Bottleneck reported by the server (share of the workers' busy time, best round): ${BNECK[$best_d]}.
CPU by process per round: $(for ((i = 1; i <= REPEAT; i++)); do printf '%s%s' "${PCPU[$i]}" "$( ((i < REPEAT)) && echo ' | ')"; done).
$(load_note "${s_keys[@]}") (The distributed runs' own daemons count as "other processes" there, so only
the standalone runs are judged.)

### Server API latency with $VMS VMs in the inventory and $QUEUED queued tasks

State: a job \`inventory\` with $VMS VMs × 1 disk (\`GET /api/v1/jobs\` answers $JOBS_BYTES bytes), a job
\`queued\` with $QUEUED VMs × 1 disk whose session $QSID holds $QUEUED tasks in state \`queued\` (the only
proxy stopped, so none is dispatched), $REPEAT finished sessions, $N_POINTS points, $N_AGENTS agents.
Setup times: \`job create\` with $VMS VMs ${T[create_inventory]} s, with $QUEUED VMs ${T[create_queued]} s;
\`job run\` queueing $QUEUED tasks ${T[run_queued]} s.
Load: \`bench/apiload\` (Go, one keep-alive HTTPS client, server CA, admin token), $REQUESTS GETs after
a 40-request warm-up, $CLIENTS concurrent clients, the paths below in turn:
$(jq -r '"\(.requests_per_second | floor) requests/s"' "$AL") over $(jq -r '.seconds * 100 | floor / 100' "$AL") s; server CPU $SERVER_CPU s
($(awk -v c="$SERVER_CPU" -v n="$REQUESTS" 'BEGIN { printf "%.2f", 1000 * c / n }') ms per request). Errors: $(ov errors).

| Path | Requests | Bytes per response | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
$(jq -r '.paths[] | "| `GET \(.path)` | \(.requests) | \(.bytes_per_response) | \(.p50_ms) | \(.p90_ms) | \(.p99_ms) | \(.max_ms) |"' "$AL")
| **all** | $(ov requests) | $(ov bytes_per_response) | $(ov p50_ms) | $(ov p90_ms) | $p99 | $(ov max_ms) |

| Check | Value | Target | Result |
| --- | ---: | --- | --- |
| p99 latency, all paths (ms) | $p99 | < 100 | $(passfail lt "$p99" 100) |
| p50 latency, all paths (ms) | $(ov p50_ms) | — | — |
| Tasks still queued after the load | $n_after | $QUEUED | $(passfail test "$n_after" -eq "$QUEUED") |
OUT
