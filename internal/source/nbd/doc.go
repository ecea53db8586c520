// Package nbd is the NBD backup source: a disk read from any NBD server
// (qemu-nbd, qemu-storage-daemon, nbdkit, a libvirt or Proxmox backup
// export) by URL: nbd://host:port/export, nbds://… (TLS),
// nbd+unix:///export?socket=PATH.
//
// Allocation comes from the server's base:allocation context (holes and
// zero ranges are never read). With a dirty bitmap name, the server's
// qemu:dirty-bitmap:NAME context is the changed-extent feed (CBT); the
// caller vouches that the bitmap covers the changes since the previous
// backup, which the change ID "nbd-bitmap:NAME" records.
package nbd
