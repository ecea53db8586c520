// Package vcsim starts govmomi's own vSphere simulator in-process for
// tests: a vCenter (VPX model) with datacenters, hosts, datastores backed
// by temporary directories and VMs, served over HTTPS on loopback with a
// user and password of the test's choosing.
package vcsim
