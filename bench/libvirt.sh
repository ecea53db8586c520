#!/usr/bin/env bash
# Holdfast's libvirt source side by side with virtnbdbackup on the same
# kind of domain: a TCG domain whose 1 GiB qcow2 disk holds 274 MiB of
# random data. Each tool backs up its own copy of the domain (two domains
# from one image, so neither sees the other's checkpoints): full backup,
# incremental after a 1 % change (ten 1 MiB guest writes through the
# monitor), restore of the latest point, repository size; then each tool
# also backs up the other domain (the same content): the size of both.
# Runs a private libvirtd in a mount namespace (root). Usage: bench/libvirt.sh [holdfast-binary]
set -euo pipefail
cd "$(dirname "$0")/.."
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
for d in etc run lib cache log; do mkdir -p "$W/$d"; done
cat > "$W/etc/qemu.conf" <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
echo 'auth_unix_rw = "none"' > "$W/etc/libvirtd.conf"
getent passwd libvirt-qemu >/dev/null || { groupadd -r libvirt-qemu || true; useradd -r -g libvirt-qemu -M libvirt-qemu; }
unshare --mount --propagation private sh -c "
  mount --bind $W/etc /etc/libvirt; mount --bind $W/run /run/libvirt; mount --bind $W/lib /var/lib/libvirt
  mount --bind $W/cache /var/cache/libvirt; mount --bind $W/log /var/log/libvirt
  exec libvirtd --pid-file $W/libvirtd.pid" >"$W/libvirtd.log" 2>&1 &
LVPID=$!
URI="qemu+unix:///system?socket=$W/run/libvirt-sock"
for _ in $(seq 600); do virsh -c "$URI" version >/dev/null 2>&1 && break; sleep 0.1; done

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
inns() { unshare --mount --propagation private sh -c 'mount --bind "$0/run" /run/libvirt && shift && exec "$@"' "$W" x "$@"; }
t() { local s e; s=$(date +%s.%N); inns "$@" >"$W/last.log" 2>&1 || { cat "$W/last.log" >&2; exit 1; }; e=$(date +%s.%N); echo "$e - $s" | bc; }

export HOLDFAST_REPOSITORY="$W/repo" HOLDFAST_PASSWORD=bench
"$HF" repo init >/dev/null
mkdir -p "$W/vnb"
hf_full=$(t "$HF" backup --name bench libvirt:///bench-hf)
vnb_full=$(t virtnbdbackup -d bench-vnb -l full -o "$W/vnb")
change bench-hf; change bench-vnb
hf_inc=$(t "$HF" backup --name bench libvirt:///bench-hf)
vnb_inc=$(t virtnbdbackup -d bench-vnb -l inc -o "$W/vnb")
hf_restore=$(t "$HF" restore bench:latest --to "$W/hf-restored.raw")
vnb_restore=$(t virtnbdrestore -i "$W/vnb" -o "$W/vnb-restored")
hf_size=$(du -sb "$W/repo" | cut -f1)
vnb_size=$(du -sb "$W/vnb" | cut -f1)
# dedup across two domains cloned from one image: each tool backs up the
# other domain too (same content), into the same repository / a second folder
t "$HF" backup --name bench2 libvirt:///bench-vnb >/dev/null
mkdir -p "$W/vnb2"
t virtnbdbackup -d bench-hf -l copy -o "$W/vnb2" >/dev/null # copy: virtnbdbackup refuses full/inc beside a foreign (Holdfast) checkpoint
hf_size2=$(du -sb "$W/repo" | cut -f1)
vnb_size2=$(du -sb "$W/vnb" "$W/vnb2" | awk '{s += $1} END {print s}')
printf '%-12s %10s %14s %10s\n' step holdfast virtnbdbackup ratio
for s in full inc restore; do
  h=$(eval echo "\$hf_$s"); v=$(eval echo "\$vnb_$s")
  printf '%-12s %9.2fs %13.2fs %10.2f\n' "$s" "$h" "$v" "$(echo "$h / $v" | bc -l)"
done
printf '%-12s %9dM %13dM %10.2f\n' size $((hf_size >> 20)) $((vnb_size >> 20)) "$(echo "$hf_size / $vnb_size" | bc -l)"
printf '%-12s %9dM %13dM %10.2f\n' size-2-vms $((hf_size2 >> 20)) $((vnb_size2 >> 20)) "$(echo "$hf_size2 / $vnb_size2" | bc -l)"
