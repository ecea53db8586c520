// Package libvirtconn dials libvirtd: it turns a libvirt connection URI
// ("qemu:///system", "qemu+unix:///system?socket=PATH") into a connected
// go-libvirt client speaking libvirt's RPC protocol in pure Go. The backup
// source (internal/source/libvirt), restore into libvirt and instant
// recovery through libvirt all connect here, so one place knows which URIs
// Holdfast can dial and how a URI is named in messages (without its user).
package libvirtconn
