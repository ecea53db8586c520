// Package vsphererestore brings a restore point of a vSphere VM back to
// vSphere, reading the point's disks through restorefs (the one read path,
// never a copy).
//
// # Full restore
//
// Restore recreates the VM from the configuration recorded in the point's
// manifest (repo.VMConfig): CreateVM_Task makes a VM with the recorded
// CPUs, memory, firmware, guest ID, hardware version, disk controllers
// (same type and bus) and NICs (same model, on the recorded networks or
// those a network map names, with new MAC addresses unless the VM restored
// over is the original). Then every disk is uploaded into the new VM's
// directory through the datastore's HTTP access (PUT /folder/DIR/FILE
// ?dcPath=DC&dsName=DS with the logged-in session), streamed from the
// point: the extent NAME-flat.vmdk and a descriptor NAME.vmdk naming it.
// ReconfigVM_Task then attaches each descriptor at the recorded controller
// and unit. Optionally the VM is powered on.
//
// A VM of the same name in the datacenter is never replaced unless asked
// (Force): it is then powered off and destroyed before the new one is
// created. Should the restore fail after the VM was created, the new VM is
// destroyed again; a replaced VM is gone by then.
//
// Controllers are named as govmomi's VirtualDeviceList.Type names them:
// pvscsi, lsilogic, lsilogic-sas, buslogic, nvme, ahci (or sata) and ide; a
// recorded "pvscsi 0" (type and bus) reads the same. IDE controllers are
// never created: every VM has two.
//
// # Rollback
//
// Rollback writes into a powered-off VM's own disks only what differs from
// the point, through direct access to its datastore (a directory where the
// datastore is mounted, given per datastore). Each disk's descriptor is
// read and its single flat extent opened confined to that directory
// (openat2 RESOLVE_BENEATH, no symbolic links). Which chunks are compared:
// with changed block tracking, those QueryChangedDiskAreas reports changed
// since the change ID the point recorded; without it (or when vSphere
// refuses that change ID) every chunk, comparing hashes. Only the chunks
// that differ are written. Writing past the VM's back leaves its CBT state
// wrong, so before the first write CBT is reset (disabled and enabled
// again): the next backup then reads the disk in full instead of trusting
// a change ID that missed the rollback.
package vsphererestore
