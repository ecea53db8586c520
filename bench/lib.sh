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
declare -A T=() RSS=()
measure() {
	local name=$1; shift
	local t0 t1 rc=0
	log "run $name: $*"
	t0=$(now)
	/usr/bin/time -f %M -o "$WORK/$name.rss" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
	t1=$(now)
	if ((rc != 0)); then
		log "$name failed with exit code $rc; stderr:"
		tail -n 30 "$WORK/$name.err" >&2
		exit 1
	fi
	T[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	RSS[$name]=$(tail -n 1 "$WORK/$name.rss")
	log "  $name: ${T[$name]} s, peak RSS $((RSS[$name] / 1024)) MiB"
}

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
