// Package instant is Instant VM Recovery: a restore point's disks served
// straight from the repository — over NBD (one export per disk) and NFS
// (an export per session holding each disk as a flat file, a VMDK
// descriptor and the VM's configuration) — with the VM's writes kept apart
// in a redo overlay per disk (internal/restorefs), so the repository is
// never written. A session is recorded in a registry directory so `list`,
// `stop` and `migrate` find it from other processes; its redo data lives in
// its redo directory and survives a restart of the service.
//
// Migration to production writes point + redo to an image file (offline:
// the session is stopped first, so what is written equals what the VM saw).
package instant
