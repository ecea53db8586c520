#!/usr/bin/env bash
# Holdfast's libvirt source through qemu+ssh (libvirt RPC and NBD export in
# one SSH connection to a real sshd on 127.0.0.1) against the same backup
# over the local unix socket: the cost of the SSH transport. A TCG domain
# whose 1 GiB qcow2 disk holds 274 MiB of random data (as bench/libvirt.sh);
# full backup and incremental after a 1 % change, each into its own
# repository (local: repo-local, ssh: repo-ssh), and "connect": a backup of
# a missing domain (connect, look up, fail). Runs a private libvirtd in
# a mount namespace and a private sshd (root).
# Usage: bench/libvirt-ssh.sh [holdfast-binary]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
HF=${1:-bin/holdfast}
[ -x "$HF" ] || { go build -o bin/holdfast ./cmd/holdfast; HF=bin/holdfast; }
HF=$(realpath "$HF")
W=$(mktemp -d /tmp/hf-lvs-XXXX)
cleanup() {
  virsh -c "$URI" destroy bench-ssh >/dev/null 2>&1 || true
  [ -n "${LVPID:-}" ] && kill "$LVPID" 2>/dev/null && wait "$LVPID" 2>/dev/null || true
  [ -n "${SSHPID:-}" ] && kill "$SSHPID" 2>/dev/null && wait "$SSHPID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/scratch"
start_libvirtd "$W"
SOCK=$LVSOCK
URI=$LVURI

# sshd on 127.0.0.1 with its own host key, accepting one client key for root
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$W/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$W/id"
cp "$W/id.pub" "$W/authorized_keys"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$W/sshd_config" <<CONF
ListenAddress 127.0.0.1
HostKey $W/host_key
PidFile $W/sshd.pid
AuthorizedKeysFile $W/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
CONF
/usr/sbin/sshd -D -e -f "$W/sshd_config" -p "$PORT" 2>"$W/sshd.log" &
SSHPID=$!
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$W/host_key.pub")" > "$W/known_hosts"
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
SSHURI="qemu+ssh://root@127.0.0.1:$PORT/system?socket=$SOCK&keyfile=$W/id&known_hosts=$W/known_hosts"

truncate -s 1G "$W/base.raw"
for i in $(seq 0 136); do
  dd if=/dev/urandom of="$W/base.raw" bs=2M count=1 seek=$((i * 3)) conv=notrunc status=none
done
qemu-img convert -O qcow2 "$W/base.raw" "$W/bench-ssh.qcow2"
rm "$W/base.raw"
cat > "$W/dom.xml" <<XML
<domain type='qemu'><name>bench-ssh</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$W/bench-ssh.qcow2'/>
<target dev='vda' bus='virtio'/></disk><controller type='usb' model='none'/><memballoon model='none'/></devices></domain>
XML
virsh -c "$URI" define "$W/dom.xml" >/dev/null
virsh -c "$URI" start bench-ssh >/dev/null
change() { # ten 1 MiB writes: 1 % of the disk
  for i in $(seq 0 9); do
    virsh -c "$URI" qemu-monitor-command bench-ssh --hmp \
      "qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"write -P 0x5a $((i * 97 + 5))M 1M\"" >/dev/null
  done
}
t() { local s e; s=$(date +%s.%N); "$@" >"$W/last.log" 2>&1 || { cat "$W/last.log" >&2; exit 1; }; e=$(date +%s.%N); echo "$e - $s" | bc; }
export HOLDFAST_PASSWORD=bench SSH_AUTH_SOCK= TMPDIR="$W/scratch"
HOLDFAST_REPOSITORY="$W/repo-local" "$HF" repo init >/dev/null
HOLDFAST_REPOSITORY="$W/repo-ssh" "$HF" repo init >/dev/null
local_full=$(HOLDFAST_REPOSITORY="$W/repo-local" t "$HF" backup --name b --libvirt-uri "$URI" libvirt:///bench-ssh)
ssh_full=$(HOLDFAST_REPOSITORY="$W/repo-ssh" t "$HF" backup --name b --libvirt-uri "$SSHURI" --libvirt-scratch-dir "$W/scratch" libvirt:///bench-ssh)
change
local_inc=$(HOLDFAST_REPOSITORY="$W/repo-local" t "$HF" backup --name b --libvirt-uri "$URI" libvirt:///bench-ssh)
ssh_inc=$(HOLDFAST_REPOSITORY="$W/repo-ssh" t "$HF" backup --name b --libvirt-uri "$SSHURI" --libvirt-scratch-dir "$W/scratch" libvirt:///bench-ssh)
local_connect=$(HOLDFAST_REPOSITORY="$W/repo-local" t sh -c "\"$HF\" backup --name b --libvirt-uri \"$URI\" libvirt:///none || true")
ssh_connect=$(HOLDFAST_REPOSITORY="$W/repo-ssh" t sh -c "\"$HF\" backup --name b --libvirt-uri \"$SSHURI\" libvirt:///none || true")
printf '%-12s %10s %10s %10s\n' step local ssh ratio
for s in connect full inc; do
  l=$(eval echo "\$local_$s"); h=$(eval echo "\$ssh_$s")
  printf '%-12s %9.2fs %9.2fs %10.2f\n' "$s" "$l" "$h" "$(echo "$h / $l" | bc -l)"
done
