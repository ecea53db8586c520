// Package vsphere is the VMware vSphere backup source: it speaks the
// vSphere API of vCenter or an ESXi host through govmomi.
//
// A VM is named by its inventory path (vsphere://USER@HOST/DC/vm/…/VM,
// see Locator); Connect logs in with the password given apart from the
// URL, verifying the server's certificate by default or against a pinned
// SHA-256 thumbprint.
//
// A backup is one Session: Prepare logs in, finds the VM, removes the
// snapshots named holdfast-<tag>-… that an interrupted run left, turns
// changed block tracking on when it is off, takes a snapshot without
// memory (quiesced through VMware Tools when asked, crash-consistent with
// a warning when that fails) and opens every disk the snapshot's
// configuration lists, skipping independent and RDM disks with a warning.
// Release closes the disks, removes the snapshot (also after a failure or
// Ctrl-C: it runs on a context the interrupt does not cancel) and logs
// out; a snapshot left by a killed process goes at the next Prepare.
//
// Each disk is read by a Transport (direct, hotadd, nbd); auto tries them
// in that order per disk and the session's notes say which served each
// disk and why the others did not. NewNBD is network mode: the snapshot's
// VMDK read over the host's HTTPS datastore access (/folder ranged GETs
// through the session's client) and parsed by file.OpenVMDK.
//
// Each disk is also a source.ChangeTracker over QueryChangedDiskAreas:
// Allocated asks with change ID "*", Changed with the previous point's ID;
// an ID that cannot be trusted (none, another tracking instance, refused
// by vSphere) gives Known=false and a reason, never an error. List reads
// the inventory for `holdfast vsphere ls`.
//
// NewDirect reads a disk from a datastore
// mounted on the proxy (--datastore-path NAME=DIR; names confined with
// file.BeneathFiles), NewHotAdd by attaching the disk to the proxy's own
// VM (--vsphere-vm NAME) and reading its block device, detached again on
// Close and on every failure. See docs/vsphere.md, "Transport modes".
package vsphere
