#!/usr/bin/env bash
# Holdfast's libvirt source side by side with virtnbdbackup on the same
# kind of domain: a TCG domain whose 1 GiB qcow2 disk holds 274 MiB of
# random data. Each tool backs up its own copy of the domain (two domains
# from one image, so neither sees the other's checkpoints): full backup,
# incremental after a 1 % change (ten 1 MiB guest writes through the
# monitor), restore of the latest point, repository size; then each tool
# also backs up the other domain (the same content): the size of both.
# Holdfast restores twice: to a raw file and, like virtnbdrestore, to a
# qcow2 image. PROFILE_DIR=DIR keeps a CPU profile of each Holdfast step
# there (HOLDFAST_CPUPROFILE) and its debug log with timestamps.
# Runs a private libvirtd in a mount namespace (root). Usage: bench/libvirt.sh [holdfast-binary]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
HF=${1:-bin/holdfast}
[ -x "$HF" ] || { go build -o bin/holdfast ./cmd/holdfast; HF=bin/holdfast; }
HF=$(realpath "$HF")
W=$(mktemp -d /tmp/hf-lvb-XXXX)
cleanup() {
  for d in hf vnb; do virsh -c "$URI" destroy "bench-$d" >/dev/null 2>&1 || true; done
  [ -n "${LVPID:-}" ] && kill "$LVPID" 2>/dev/null && wait "$LVPID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
start_libvirtd "$W"
URI=$LVURI

# the image: 1 GiB, 274 MiB of random data in 2 MiB pieces spread over it
truncate -s 1G "$W/base.raw"
for i in $(seq 0 136); do
  dd if=/dev/urandom of="$W/base.raw" bs=2M count=1 seek=$((i * 3)) conv=notrunc status=none
done
qemu-img convert -O qcow2 "$W/base.raw" "$W/bench-hf.qcow2"
cp "$W/bench-hf.qcow2" "$W/bench-vnb.qcow2"
rm "$W/base.raw"
for d in hf vnb; do
  cat > "$W/$d.xml" <<XML
<domain type='qemu'><name>bench-$d</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$W/bench-$d.qcow2'/>
<target dev='vda' bus='virtio'/></disk><controller type='usb' model='none'/><memballoon model='none'/></devices></domain>
XML
  virsh -c "$URI" define "$W/$d.xml" >/dev/null
  virsh -c "$URI" start "bench-$d" >/dev/null
done
change() { # ten 1 MiB writes: 1 % of the disk
  for i in $(seq 0 9); do
    virsh -c "$URI" qemu-monitor-command "$1" --hmp \
      "qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"write -P 0x5a $((i * 97 + 5))M 1M\"" >/dev/null
  done
}
# Both tools run where /run/libvirt is the private daemon's: virtnbdbackup
# takes any other URI for a remote one; Holdfast reads the same default.
inns=(unshare --mount --propagation private sh -c 'mount --bind "$0/run" /run/libvirt && shift && exec "$@"' "$W" x)
# t CMD…: "WALL CPU", seconds elapsed and of CPU (user + system, the tool
# and its children such as qemu-nbd; not qemu's NBD server in the domain)
t() {
  local s e
  s=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$W/time" "${inns[@]}" "$@" >"$W/last.log" 2>&1 || { cat "$W/last.log" >&2; exit 1; }
  e=$(date +%s.%N)
  echo "$(echo "$e - $s" | bc) $(awk '{print $1 + $2}' "$W/time")"
}
# hf STEP ARGS…: a Holdfast step, profiled and logged when PROFILE_DIR is set
hf() {
  local step=$1; shift
  if [ -z "${PROFILE_DIR:-}" ]; then t "$HF" "$@"; return; fi
  mkdir -p "$PROFILE_DIR"
  HOLDFAST_CPUPROFILE="$PROFILE_DIR/$step.pprof" t "$HF" --log-level debug "$@"
  cp "$W/last.log" "$PROFILE_DIR/$step.log"
}

export HOLDFAST_REPOSITORY="$W/repo" HOLDFAST_PASSWORD=bench
"$HF" repo init >/dev/null
mkdir -p "$W/vnb"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
hf_full=$(hf full backup --name bench libvirt:///bench-hf)
vnb_full=$(t virtnbdbackup -d bench-vnb -l full -o "$W/vnb")
change bench-hf; change bench-vnb
hf_inc=$(hf inc backup --name bench libvirt:///bench-hf)
vnb_inc=$(t virtnbdbackup -d bench-vnb -l inc -o "$W/vnb")
hf_restore=$(hf restore restore bench:latest --to "$W/hf-restored.raw")
hf_restoreq=$(hf restore-qcow2 restore bench:latest --to "$W/hf-restored.qcow2")
vnb_restore=$(t virtnbdrestore -i "$W/vnb" -o "$W/vnb-restored")
vnb_restoreq=$vnb_restore
# all restores hold the same guest content (both domains had the same writes)
vnb_image=$(find "$W/vnb-restored" -maxdepth 1 -type f ! -name '*.xml' | head -1)
for img in "$W/hf-restored.qcow2" "$vnb_image"; do
  qemu-img compare -q "$W/hf-restored.raw" "$img" || { echo "restored images differ: $img" >&2; exit 1; }
done
hf_size=$(du -sb "$W/repo" | cut -f1)
vnb_size=$(du -sb "$W/vnb" | cut -f1)
# dedup across two domains cloned from one image: each tool backs up the
# other domain too (same content), into the same repository / a second folder
t "$HF" backup --name bench2 libvirt:///bench-vnb >/dev/null
mkdir -p "$W/vnb2"
t virtnbdbackup -d bench-hf -l copy -o "$W/vnb2" >/dev/null # copy: virtnbdbackup refuses full/inc beside a foreign (Holdfast) checkpoint
hf_size2=$(du -sb "$W/repo" | cut -f1)
vnb_size2=$(du -sb "$W/vnb" "$W/vnb2" | awk '{s += $1} END {print s}')
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-14s %10s %14s %10s %12s %12s\n' step holdfast virtnbdbackup ratio holdfast-cpu vnb-cpu
for s in full inc restore restoreq; do
  read -r h hc <<<"$(eval echo "\$hf_$s")"; read -r v vc <<<"$(eval echo "\$vnb_$s")"
  n=$s; [ "$s" = restore ] && n=restore-raw; [ "$s" = restoreq ] && n=restore-qcow2
  printf '%-14s %9.2fs %13.2fs %10.2f %11.2fs %11.2fs\n' "$n" "$h" "$v" "$(echo "$h / $v" | bc -l)" "$hc" "$vc"
done
printf '%-14s %9dM %13dM %10.2f\n' size $((hf_size >> 20)) $((vnb_size >> 20)) "$(echo "$hf_size / $vnb_size" | bc -l)"
printf '%-14s %9dM %13dM %10.2f\n' size-2-vms $((hf_size2 >> 20)) $((vnb_size2 >> 20)) "$(echo "$hf_size2 / $vnb_size2" | bc -l)"
