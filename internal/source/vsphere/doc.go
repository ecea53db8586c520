// Package vsphere is the VMware vSphere backup source: it speaks the
// vSphere API of vCenter or an ESXi host through govmomi.
//
// A VM is named by its inventory path (vsphere://USER@HOST/DC/vm/…/VM,
// see Locator); Connect logs in with the password given apart from the
// URL, verifying the server's certificate by default or against a pinned
// SHA-256 thumbprint.
//
// A Transport reads one disk at a snapshot: NewDirect from a datastore
// mounted on the proxy (--datastore-path NAME=DIR; names confined with
// file.BeneathFiles), NewHotAdd by attaching the disk to the proxy's own
// VM (--vsphere-vm NAME) and reading its block device, detached again on
// Close and on every failure. See docs/vsphere.md, "Transport modes".
package vsphere
