# Shared helpers for bench/run.sh and bench/sparse.sh (sourced, not run).
# shellcheck shell=bash

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# to_bytes 2G -> 2147483648 (K, M, G, T binary suffixes; optional "iB"/"B").
to_bytes() {
	local s=${1%B} ; s=${s%i}
	local n=${s%[KkMmGgTt]} unit=${s:${#s}-1:1}
	[[ $n =~ ^[0-9]+$ ]] || die "bad size: $1"
	case $unit in
	[Kk]) echo $((n << 10)) ;;
	[Mm]) echo $((n << 20)) ;;
	[Gg]) echo $((n << 30)) ;;
	[Tt]) echo $((n << 40)) ;;
	*) echo "$n" ;;
	esac
}

# apt_install PKG...: install Debian packages (root, or sudo), waiting for a
# dpkg lock held by another apt run.
apt_install() {
	local sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	local i
	for i in 1 2 3; do
		if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			-o DPkg::Lock::Timeout=600 "$@" >&2; then
			return 0
		fi
		log "apt-get install $* failed (attempt $i); refreshing package lists and retrying"
		"${sudo[@]}" apt-get update -q -o DPkg::Lock::Timeout=600 >&2 || true
		sleep 5
	done
	die "could not install $*"
}

# need CMD PKG: make sure CMD exists, installing Debian package PKG otherwise.
need() {
	local cmd=$1 pkg=$2
	if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x $cmd ]]; then
		log "$cmd not found; installing Debian package $pkg"
		apt_install "$pkg"
	fi
	command -v "$cmd" >/dev/null 2>&1 || [[ -x $cmd ]] || die "$cmd still missing after installing $pkg"
}

# PATH additions for tools that live in sbin on Debian (sfdisk, mkfs.ext4)
# when the script is run by a normal user.
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"

# build_holdfast OUT: go build the CLI from the repository root.
# holdfast_binary OUT: $HOLDFAST_BIN copied to OUT, or a fresh build.
holdfast_binary() {
	if [[ -n ${HOLDFAST_BIN:-} ]]; then
		log "using prebuilt $HOLDFAST_BIN (HOLDFAST_BIN)"
		cp "$HOLDFAST_BIN" "$1"
	else
		log "building holdfast"
		build_holdfast "$1"
	fi
}

# need_space KB: die unless the work dir's file system has KB free.
need_space() {
	local avail_kb
	avail_kb=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
	((avail_kb > $1)) || die "need ~$(($1 >> 20)) GiB free in $WORK, have $((avail_kb >> 20)) GiB"
}

# port_busy PORT: true if something listens on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a port on 127.0.0.1 nothing listens on now.
free_port() {
	local p
	for p in $(shuf -i 20000-40000 -n 50); do port_busy "$p" || { echo "$p"; return; }; done
	die "no free port"
}

build_holdfast() {
	local out=$1 tries=${BUILD_RETRIES:-0} i=0
	while :; do
		if (cd "$REPO_ROOT" && go build -o "$out" ./cmd/holdfast) >&2; then
			return 0
		fi
		if ((i >= tries)); then
			die "go build ./cmd/holdfast failed (set BUILD_RETRIES=N to retry every ${BUILD_RETRY_SECS:-180}s)"
		fi
		i=$((i + 1))
		log "build failed; retry $i/$tries in ${BUILD_RETRY_SECS:-180}s"
		sleep "${BUILD_RETRY_SECS:-180}"
	done
}

now() { date +%s.%N; }

# measure NAME CMD...: run CMD with /usr/bin/time, record wall-clock seconds
# in T[NAME] and peak RSS (KiB) in RSS[NAME]; stdout goes to $WORK/NAME.out,
# stderr to $WORK/NAME.err. Fails the script if CMD fails.
# CPU[NAME] gets its user+system CPU seconds and OTHER[NAME] the share (%) of
# the machine's CPU that other processes used meanwhile (from /proc/stat):
# anything else running skews wall-clock times. With WAIT_IDLE=SECONDS,
# measure first waits up to that long for the machine to be idle (not when
# NO_WAIT=1: a step that must follow the previous one at once).
declare -A T=() RSS=() CPU=() OTHER=()
CLK_TCK=$(getconf CLK_TCK)
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# busy_pct SECONDS: share of all CPUs busy over an interval.
busy_pct() {
	local a b
	a=$(busy_jiffies); sleep "$1"; b=$(busy_jiffies)
	awk -v d=$((b - a)) -v hz="$CLK_TCK" -v n="$(nproc)" -v s="$1" 'BEGIN { printf "%.0f", 100 * d / hz / n / s }'
}
wait_idle() {
	local limit=${WAIT_IDLE:-0} waited=0 pct
	((limit > 0)) || return 0
	while pct=$(busy_pct 1) && ((pct > 10)); do
		if ((waited >= limit)); then
			log "machine still ${pct}% busy after ${waited}s; measuring anyway"
			return 0
		fi
		((waited == 0)) && log "machine ${pct}% busy; waiting up to ${limit}s for it to settle"
		sleep 4
		waited=$((waited + 5))
	done
}
measure() {
	local name=$1; shift
	local t0 t1 j0 j1 rc=0
	[[ ${NO_WAIT:-0} == 1 ]] || wait_idle
	log "run $name: $*"
	j0=$(busy_jiffies)
	t0=$(now)
	/usr/bin/time -f '%M %U %S' -o "$WORK/$name.rss" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
	t1=$(now)
	j1=$(busy_jiffies)
	if ((rc != 0)); then
		log "$name failed with exit code $rc; stderr:"
		tail -n 30 "$WORK/$name.err" >&2
		exit 1
	fi
	T[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	read -r "RSS[$name]" "CPU[$name]" < <(tail -n 1 "$WORK/$name.rss" | awk '{ printf "%d %.2f\n", $1, $2 + $3 }')
	OTHER[$name]=$(awk -v d=$((j1 - j0)) -v hz="$CLK_TCK" -v own="${CPU[$name]}" -v n="$(nproc)" -v w="${T[$name]}" \
		'BEGIN { o = d / hz - own; if (o < 0 || w <= 0) o = 0; printf "%.0f", 100 * o / n / (w > 0 ? w : 1) }')
	log "  $name: ${T[$name]} s wall, ${CPU[$name]} s CPU, peak RSS $((RSS[$name] / 1024)) MiB, other processes ${OTHER[$name]}% CPU"
}

# msecs NAME CMD...: run CMD, wall time in milliseconds (3 decimals) into
# MS[NAME]; stdout to $WORK/NAME.out, stderr to $WORK/NAME.err.
declare -A MS=()
msecs() {
	local name=$1 t0 t1 rc=0
	shift
	t0=$(now)
	"$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
	t1=$(now)
	((rc == 0)) || { tail -n 30 "$WORK/$name.err" >&2; die "$name failed ($rc): $*"; }
	MS[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
}
# stats V...: "best median" of numbers.
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %s\n", v[1], m }'; }
mibps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }

# Formatting helpers used by the tables.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1048576 }'; }   # bytes -> MiB
kib2mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }  # KiB -> MiB
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
# le A B: A <= B (floats)
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
passfail() { if "$@"; then echo PASS; else echo "**FAIL**"; fi; }

machine_line() {
	local cpu mem
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
	mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
	echo "$(nproc) × ${cpu:-unknown CPU}, $mem RAM, $(uname -sr)"
}

holdfast_version_line() {
	local rev dirty=""
	rev=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [[ -n $(git -C "$REPO_ROOT" status --porcelain -- '*.go' 2>/dev/null) ]]; then dirty="+uncommitted changes"; fi
	echo "holdfast $rev$dirty ($(go version | awk '{ print $3 }'))"
}

# load_note: say how busy the machine was with other work during the
# measurements (the report's wall-clock times are only clean when idle).
load_note() { # [KEY...]: only these measurements (default: all)
	local k max=0 worst=""
	local keys=("$@")
	((${#keys[@]})) || keys=("${!OTHER[@]}")
	for k in "${keys[@]}"; do
		# Sub-second runs are too short to judge (10 ms clock ticks).
		lt "${T[$k]}" 1 && continue
		if ((OTHER[$k] > max)); then max=${OTHER[$k]} worst=$k; fi
	done
	if ((max > 10)); then
		echo "**Warning:** other processes used up to ${max} % of the machine's CPU during a measurement in the table ($worst), so wall-clock times are noisy; CPU seconds are less affected. Rerun on an idle machine (or with WAIT_IDLE=300)."
	else
		echo "Other processes used at most ${max} % of the machine's CPU during any measurement of 1 s or more in the table."
	fi
}

# setup_workdir PREFIX: WORK = $BENCH_DIR or a new /var/tmp/PREFIX.XXXXXX,
# removed on exit unless KEEP=1. Scripts may set EXTRA_CLEANUP to a command
# run first (e.g. stopping a VM).
setup_workdir() {
	if [[ -n ${BENCH_DIR:-} ]]; then
		WORK=$BENCH_DIR
		mkdir -p "$WORK"
	else
		WORK=$(mktemp -d "/var/tmp/$1.XXXXXX")
	fi
	WORK=$(cd "$WORK" && pwd)
	trap cleanup_workdir EXIT
	trap 'exit 130' INT TERM
}
cleanup_workdir() {
	local rc=$?
	[[ -n ${EXTRA_CLEANUP:-} ]] && eval "$EXTRA_CLEANUP" || true
	if [[ ${KEEP:-0} == 1 ]]; then
		log "KEEP=1: leaving $WORK"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}

# start_versitygw: a real S3 server (versitygw, posix backend with
# versioning, which Object Lock needs) on a free loopback port under
# $WORK; sets VPORT and VGW_PID (the caller kills it in EXTRA_CLEANUP) and
# exports the matching AWS_* credentials.
start_versitygw() {
	local vgw
	vgw=$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")
	[[ -x $vgw ]] || die "versitygw not found: run scripts/setup"
	VPORT=$(free_port)
	mkdir -p "$WORK/gw" "$WORK/versions"
	ROOT_ACCESS_KEY=bench ROOT_SECRET_KEY=bench-secret-key-0123 "$vgw" --port "127.0.0.1:$VPORT" posix \
		--versioning-dir "$WORK/versions" "$WORK/gw" >"$WORK/vgw.log" 2>&1 &
	VGW_PID=$!
	export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key-0123 AWS_REGION=us-east-1
}

# compressible_file PATH BYTES: BYTES of distinct data that compresses to
# about 3/4 (base64 of random bytes), without a pipe cut short.
compressible_file() {
	head -c $(( ($2 + 3) / 4 * 3 )) /dev/urandom | base64 -w0 >"$1"
	truncate -s "$2" "$1"
}

# start_libvirtd DIR: a private libvirtd (root) whose /etc/libvirt, /run/libvirt,
# /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt are directories under
# DIR bind-mounted in a mount namespace of its own, QEMU running as root without
# cgroups, namespaces or a security driver (as internal/testutil/libvirtd does
# for the tests). Sets LVPID, LVSOCK and LVURI, and waits until it answers.
start_libvirtd() {
	local w=$1 d
	for d in etc run lib cache log; do mkdir -p "$w/$d"; done
	cat >"$w/etc/qemu.conf" <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
	echo 'auth_unix_rw = "none"' >"$w/etc/libvirtd.conf"
	getent passwd libvirt-qemu >/dev/null || { groupadd -r libvirt-qemu || true; useradd -r -g libvirt-qemu -M libvirt-qemu; }
	unshare --mount --propagation private sh -c "
  mount --bind $w/etc /etc/libvirt; mount --bind $w/run /run/libvirt; mount --bind $w/lib /var/lib/libvirt
  mount --bind $w/cache /var/cache/libvirt; mount --bind $w/log /var/log/libvirt
  exec libvirtd --pid-file $w/libvirtd.pid" >"$w/libvirtd.log" 2>&1 &
	LVPID=$!
	LVSOCK="$w/run/libvirt-sock"
	LVURI="qemu+unix:///system?socket=$LVSOCK"
	for _ in $(seq 600); do virsh -c "$LVURI" version >/dev/null 2>&1 && return 0; sleep 0.1; done
	die "libvirtd did not answer on $LVSOCK (see $w/libvirtd.log)"
}
