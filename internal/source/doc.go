// Package source defines what the backup pipeline reads from: a Disk is a
// virtual disk of a fixed size that can be read at any offset and that can
// say which byte ranges may hold data (allocated) and, where the platform
// tracks it, which ranges changed since the previous backup (CBT).
//
// Source platforms live in sub-packages: file (raw, qcow2, VMDK images and
// block devices); later nbd, qemu and vsphere. The pipeline never knows which
// platform it reads from.
package source
