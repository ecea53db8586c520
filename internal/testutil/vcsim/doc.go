// Package vcsim starts govmomi's own vSphere simulator in-process for
// tests: a vCenter (VPX model) with datacenters, hosts, datastores backed
// by temporary directories and VMs, served over HTTPS on loopback with a
// user and password of the test's choosing.
//
// Sim.CBT extends the simulator with changed block tracking over the real
// flat files of the VMs' disks (change IDs at CreateSnapshot,
// QueryChangedDiskAreas, FileFault for unknown IDs, reset), with hooks to
// fail quiesced snapshots and to stop a caller at a query or a method.
// WriteDisk, SetDiskCapacity and Disks put real bytes into a VM's disk.
package vcsim
