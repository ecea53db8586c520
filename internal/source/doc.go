// Package source defines what the backup pipeline reads from: a Disk is a
// virtual disk of a fixed size that can be read at any offset and that can
// say which byte ranges may hold data (allocated) and, where the platform
// tracks it, which ranges changed since the previous backup (CBT).
//
// Source platforms live in sub-packages: file (raw, qcow2, VMDK images and
// block devices), nbd (NBD exports), qemu (a running QEMU VM), libvirt (a
// libvirt domain) and vsphere (a VM of vCenter or ESXi). The pipeline never knows which platform it reads from.
//
// A source is named by a specification — a job's disk entry, a backup's
// SOURCE argument — and Parse is the one place that reads it:
//
//	/images/vm1.img, file:///images/vm1.img   KindFile  direct
//	nbd://host:10809/export                  KindNBD   nbd
//	nbd+unix:///export?socket=/run/nbd.sock  KindNBD   nbd
//	nbds://host/export, nbds+unix://…        KindNBD   nbd+tls
//	qemu:///run/vm1/qmp.sock                 KindQEMU  direct, hotadd, nbd (a whole VM)
//	vsphere://user@vc:443/DC/vm/Folder/VM    KindVSphere direct, hotadd, nbd (a whole VM)
//	libvirt:///DOMAIN, libvirt+ssh://u@h/DOMAIN KindLibvirt hotadd (a whole VM)
//
// A Spec gives the kind, the transports the source may be read with (the
// Transport names are fixed: they are recorded in manifests and task rows),
// the reach key a proxy's --reach prefixes are matched against, and a
// redacted form for logs and manifests (no user information, no value of a
// query parameter that may be secret). Adding a source kind is adding its
// rows to the table in kinds.go; the sub-package opens it.
package source
