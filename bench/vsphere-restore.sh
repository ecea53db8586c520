#!/usr/bin/env bash
# Restore to vSphere: a 256 MiB disk, half of it zero chunks, restored to
# govmomi's in-process simulator flat (every byte sent) and with
# --sparse-upload (zero chunks left out), next to a plain HTTPS PUT of the
# same bytes from memory. Runs BenchmarkRestoreUpload and prints a Markdown
# table for docs/performance.md ("Restore to vSphere") on stdout.
#
#   bench/vsphere-restore.sh            # 5 rounds each
#   ROUNDS=3 bench/vsphere-restore.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE/.."
ROUNDS=${ROUNDS:-5}
out=$(go test -count=1 ./internal/vsphererestore/ -run '^$' -bench BenchmarkRestoreUpload -benchtime "${ROUNDS}x")
echo "$out" >&2
echo "| | MB/s of disk | s per 256 MiB | sent / disk size |"
echo "|---|---:|---:|---:|"
echo "$out" | awk '/^BenchmarkRestoreUpload/ {
	name=$1; sub(/^BenchmarkRestoreUpload\//, "", name); sub(/-[0-9]+$/, "", name)
	sent="1"; for (i = 1; i <= NF; i++) { if ($i == "MB/s") mbs=$(i-1); if ($i == "ns/op") ns=$(i-1); if ($i == "sent/disk") sent=$(i-1) }
	printf "| %s | %.0f | %.2f | %s |\n", name, mbs, ns/1e9, sent }'
