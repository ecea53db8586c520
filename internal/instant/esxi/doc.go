// Package esxi runs an Instant VM Recovery session's VM on an ESXi host:
// the session's NFS export (package instant, with the .vmx, descriptors
// and flat extents package vmx lays out) is mounted on the host as an NFS
// v3 datastore (CreateNasDatastore, read-write, to the mount server's
// address), the VM is registered from its .vmx into the datacenter's VM
// folder and the host's resource pool (RegisterVM_Task), and powered on
// when asked.
//
// Every step is recorded in the session's record (instant.ESXiRecord)
// before it is taken, so Detach undoes what a start left, even one that
// was killed half-way: it powers the VM off, unregisters it — never
// destroys it: its files are the backup's — and removes the datastore,
// finding each by its recorded reference or else by its name and path.
// Migrate relocates the VM onto a production datastore (RelocateVM_Task,
// Storage vMotion); the VM is then no longer the session's, and only the
// datastore is removed.
package esxi
