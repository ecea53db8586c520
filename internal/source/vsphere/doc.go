// Package vsphere is the VMware vSphere backup source: it speaks the
// vSphere API of vCenter or an ESXi host through govmomi.
//
// A VM is named by its inventory path (vsphere://USER@HOST/DC/vm/…/VM,
// see Locator); Connect logs in with the password given apart from the
// URL, verifying the server's certificate by default or against a pinned
// SHA-256 thumbprint.
package vsphere
