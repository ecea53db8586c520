// Package qemu is the QEMU/KVM backup source: it backs up every disk of a
// running (or paused) QEMU through its QMP socket, the snapshot → read →
// release cycle of the seeds:
//
//  1. Prepare: clean up leftovers of a killed run; per disk, create a
//     fleecing overlay and, in ONE transaction for all disks, add a new
//     dirty bitmap, freeze (disable) the previous backup's bitmap and start
//     a blockdev-backup sync=none job into the overlay. That instant is the
//     restore point (the guest file systems are frozen around it when a
//     guest agent is given). Then export the overlays read-only over NBD
//     (a unix socket for "hotadd", TCP for "nbd", TLS for "nbd+tls"), each
//     with its frozen bitmap.
//  2. The pipeline reads the exports: only extents allocated (base:allocation)
//     and, when the frozen bitmap belongs to the previous restore point,
//     dirty (qemu:dirty-bitmap:NAME).
//  3. Release: remove exports, job, overlay nodes and files. On success the
//     frozen bitmap is deleted; on failure the new bitmap is merged back into
//     it and it is re-enabled, so no change is ever lost.
//
// Bitmaps are named hf-<tag>-<generation>; the generation of the bitmap a
// backup created is the restore point's change ID, so the next backup can
// tell whether the bitmap it finds covers exactly the changes since the
// previous point. A missing or inconsistent bitmap (QEMU restarted after a
// crash, bitmap removed by hand, disk added or resized) makes the backup
// read the whole disk and compare hashes, with a warning.
//
// QEMU serves one QMP client at a time: give Holdfast a monitor socket of
// its own (-qmp unix:/run/vm/holdfast.sock,server=on,wait=off).
package qemu
