package vsphererestore

import "errors"

var (
	// ErrNoConfig is matched when a point records no VM configuration
	// (not a vSphere backup, or one made before configurations were
	// recorded).
	ErrNoConfig = errors.New("the restore point records no VM configuration")
	// ErrExists is matched when a VM of the restored name exists and
	// replacing it was not asked for.
	ErrExists = errors.New("a VM of that name exists")
	// ErrPoweredOn is matched when a rollback finds the VM running.
	ErrPoweredOn = errors.New("the VM is not powered off")
	// ErrNoDatastorePath is matched when a rollback has no directory for
	// a disk's datastore.
	ErrNoDatastorePath = errors.New("no direct access to the datastore")
	// ErrMismatch is matched when the VM's disks do not fit the point.
	ErrMismatch = errors.New("the VM does not match the restore point")
	// ErrEscape is matched when a disk's files lead out of the datastore
	// directory (a symbolic link, "..").
	ErrEscape = errors.New("path leaves the datastore directory")
)
