// Package libvirtd starts a private libvirtd for a test: its configuration,
// run and state directories live under t.TempDir() and are bind-mounted over
// /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
// /var/log/libvirt in a mount namespace of its own (unshare), so parallel
// tests and a system libvirtd never see each other. QEMU runs as root
// without cgroups, namespaces or a security driver, and logs to files (no
// virtlogd), as /work/shared/PLATFORM.md describes.
//
// Without root, unshare, libvirtd or qemu-system-x86_64 the test is skipped,
// or fails when HOLDFAST_REQUIRE_LIBVIRT is set (CI sets it: scripts/setup
// installs libvirt). StartDomain defines and starts a TCG domain with a
// qcow2 virtio disk (no guest OS); Write makes the "guest" write through
// the QEMU monitor.
package libvirtd
