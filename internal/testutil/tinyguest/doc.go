// Package tinyguest builds and boots a tiny Linux guest under QEMU for tests
// of Instant VM Recovery: a Debian cloud kernel and a busybox initrd whose
// /init mounts the first virtio disk, prints the disk's "marker" file,
// appends a line to its "boots" file and powers off. It is a non-test
// package so the tests of any package can boot a guest from a local image,
// an NBD export or an NFS export.
//
// Build downloads (apt-get download) the kernel of Debian's
// linux-image-cloud-amd64 meta-package and busybox-static, unpacks them
// (dpkg-deb -x) and writes the initrd (cpio newc, gzip) itself, so no cpio
// tool is needed. The result is cached once per machine in
// /var/tmp/holdfast-tinyguest/<key> (HOLDFAST_TINYGUEST_CACHE overrides the
// root), the key naming the package versions and the recipe. Without apt
// package lists or network, an existing cache entry is reused.
//
// When a tool or the download is unavailable the test is skipped, or fails
// if CI=true or HOLDFAST_REQUIRE_TINYGUEST is set, so a broken CI setup
// cannot pass as a skip.
//
// The guest's console protocol, one line each on ttyS0:
//
//	HOLDFAST-INIT                    /init started (userspace reached)
//	HOLDFAST-MARKER: <marker>        contents of /marker on /dev/vda
//	HOLDFAST-BOOT: <n>               the line "boot <n>" was appended to /boots
//	HOLDFAST-ERROR: <what>           something failed
//	HOLDFAST-DONE                    success: disk synced and unmounted
//	HOLDFAST-FAILED                  failure (after a HOLDFAST-ERROR line)
//
// With holdfast.agent on the kernel command line, /init does not unmount
// and power off after HOLDFAST-BOOT: it acts as a minimal QEMU guest agent
// on the virtio-serial port named org.qemu.guest_agent.0 (module
// virtio_console), answering guest-sync, guest-ping,
// guest-fsfreeze-freeze and guest-fsfreeze-thaw (busybox fsfreeze on the
// mounted /dev/vda) until the guest is killed:
//
//	HOLDFAST-AGENT                   listening on the agent port
//	HOLDFAST-FROZEN / HOLDFAST-THAWED  /dev/vda's file system frozen / thawed
//
// System packages: qemu-system-x86 (Boot), e2fsprogs (MakeDisk,
// ReadDiskFile), and for Build apt and dpkg (always on Debian) with working
// package lists (apt-get update), plus xz-utils or zstd only if the kernel's
// modules are compressed.
package tinyguest
