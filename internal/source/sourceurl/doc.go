// Package sourceurl opens a disk named the way users and jobs name it (see
// source.Parse): an image path or file:// URL (raw, qcow2, VMDK, block
// device), or an NBD URL (nbd://, nbds://, nbd+unix://, nbds+unix://). The
// CLI and the proxy agent share it, so a job's disk means the same on every
// proxy. A qemu:// VM is not one disk: internal/source/qemu snapshots it.
package sourceurl
