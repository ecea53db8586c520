// Package libvirtsrc is a libvirt source of the backup server: what
// `holdfast source add NAME --type libvirt` stores in the configuration
// database, and how the server lists and places its domains.
//
// The stored definition (a JSON object) names a libvirt daemon:
//
//	{"address": "qemu:///system", "proxy": "kvm1-proxy",
//	 "list_address": "qemu+unix:///system?socket=/run/kvm1/libvirt-sock"}
//
// address is the libvirt connection URI the proxy dials to back a domain
// up (qemu:///system, qemu+unix:///system?socket=PATH,
// qemu+ssh://USER@HOST/system); proxy, when set, is the one proxy that
// runs the source's tasks — the proxy on the hypervisor host, which reads
// over the local socket. Without proxy, any proxy that reaches
// libvirt:///DOMAIN (an empty --reach, or a "libvirt://" prefix) runs them.
//
// When a job's session starts, the server itself lists the domains (every
// domain, running or shut off, with its Holdfast metadata) by dialling
// list_address, or address when list_address is empty: a server that does
// not run on the hypervisor host reaches its daemon through list_address
// (a socket it sees, or qemu+ssh once that transport is built). Listing
// through the proxy is not built.
//
// Connection URIs carry no password (libvirt authenticates over the
// socket's permissions or SSH keys); the user name is left out of
// messages.
package libvirtsrc
