// Package instant is Instant VM Recovery: a restore point's disks served
// straight from the repository — over NBD (one export per disk) and NFS
// (an export per session holding each disk as a flat file, a VMDK
// descriptor and the VM's configuration) — with the VM's writes kept apart
// in a redo overlay per disk (internal/restorefs), so the repository is
// never written. A session is recorded in a registry directory so `list`,
// `stop` and `migrate` find it from other processes; its redo data lives in
// its redo directory and survives a restart of the service.
//
// A serving process answers other processes on a control socket next to
// its record (control.go): it lists the clients of its exports (NBD
// connections; NFS clients with a connection open or a request within
// NFSActiveWindow) and decides a stop itself, refusing it while clients
// other than its own VM use the exports (InUseError, ErrInUse) unless the
// stop is forced. Its VM reaches the NBD exports on a socket of its own.
// The socket and logs of a session's VM are never deleted while it runs
// (Record.VMRunning: PID and start time).
//
// Migration to production writes point + redo to an image file (offline:
// the session is stopped first, so what is written equals what the VM saw).
//
// For ESXi the NFS export also holds a VM folder (nfsexport.go): a .vmx
// and VMFS descriptors generated from the point's configuration (package
// vmx) in the session's scratch area (ScratchDir, removed at stop), where
// the host also creates its locks, swap file and logs, and the flat
// extents through the overlays. Package esxi mounts the export on a host
// and registers the VM; what it set up is kept in Record.ESXi.
package instant
