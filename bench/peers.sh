#!/usr/bin/env bash
# Builds the peer tools bench/run.sh compares holdfast with, at pinned
# versions, into $PEERS_DIR (default ~/.cache/holdfast-bench/bin; never in the
# repository). Already built binaries of the right version are kept.
#
#   bench/peers.sh            # build what is missing, print the directory
#   bench/peers.sh restic     # only restic
#   PEERS_DIR=/opt/peers bench/peers.sh
#
# restic: `go install github.com/restic/restic/cmd/restic@VERSION`.
# kopia: `go install github.com/kopia/kopia@VERSION` is refused (its go.mod
# has replace directives), so it is built from a scratch module that requires
# it: `go mod init x && go get github.com/kopia/kopia@VERSION && go build`.
# Debian's restic 0.14 comes from apt (bench/run.sh installs it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

RESTIC_VERSION=${RESTIC_VERSION:-v0.18.1}
KOPIA_VERSION=${KOPIA_VERSION:-v0.21.1}
PEERS_DIR=${PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/holdfast-bench/bin}

need go golang-go
mkdir -p "$PEERS_DIR"
PEERS_DIR=$(cd "$PEERS_DIR" && pwd)

# have BIN VERSION: BIN exists and says it is VERSION (`restic version`,
# `kopia --version`).
have() { [[ -x $1 ]] && { "$1" version 2>/dev/null || "$1" --version 2>/dev/null; } | grep -q -- "${2#v}"; }

WANT=" ${*:-restic kopia} "

restic_bin=$PEERS_DIR/restic-${RESTIC_VERSION#v}
if [[ $WANT != *" restic "* ]]; then
	:
elif have "$restic_bin" "$RESTIC_VERSION"; then
	log "restic $RESTIC_VERSION already built: $restic_bin"
else
	log "building restic $RESTIC_VERSION (go install)"
	tmp=$(mktemp -d)
	GOBIN=$tmp go install "github.com/restic/restic/cmd/restic@$RESTIC_VERSION" >&2 ||
		die "go install restic@$RESTIC_VERSION failed"
	mv "$tmp/restic" "$restic_bin"
	rmdir "$tmp"
	have "$restic_bin" "$RESTIC_VERSION" || die "$restic_bin does not report $RESTIC_VERSION"
fi

kopia_bin=$PEERS_DIR/kopia-${KOPIA_VERSION#v}
if [[ $WANT != *" kopia "* ]]; then
	:
elif have "$kopia_bin" "$KOPIA_VERSION"; then
	log "kopia $KOPIA_VERSION already built: $kopia_bin"
else
	log "building kopia $KOPIA_VERSION (scratch module)"
	tmp=$(mktemp -d)
	(
		cd "$tmp"
		go mod init holdfast-bench-kopia >&2
		go get "github.com/kopia/kopia@$KOPIA_VERSION" >&2
		# kopia prints its version from build-time variables; set them so
		# `kopia --version` names the release.
		go build -o kopia -ldflags "-X github.com/kopia/kopia/repo.BuildVersion=${KOPIA_VERSION#v} -X github.com/kopia/kopia/repo.BuildInfo=holdfast-bench" \
			github.com/kopia/kopia >&2
	) || die "building kopia $KOPIA_VERSION failed"
	mv "$tmp/kopia" "$kopia_bin"
	rm -rf "$tmp"
	have "$kopia_bin" "$KOPIA_VERSION" || die "$kopia_bin does not report $KOPIA_VERSION"
fi

echo "$PEERS_DIR"
