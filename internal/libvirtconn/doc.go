// Package libvirtconn dials libvirtd: it turns a libvirt connection URI
// into a connected go-libvirt client speaking libvirt's RPC protocol in pure
// Go. The backup source (internal/source/libvirt), restore into libvirt and
// instant recovery through libvirt all connect here, so one place knows
// which URIs Holdfast can dial and how a URI is named in messages (Redact:
// without its user).
//
// URIs:
//
//	qemu:///system                        the local /run/libvirt/libvirt-sock
//	qemu+unix:///system?socket=PATH       another local socket
//	qemu+ssh://[USER@]HOST[:PORT]/system[?socket=PATH&keyfile=FILE&known_hosts=FILE]
//
// qemu+ssh is an SSH client of its own (golang.org/x/crypto/ssh): the host
// key must be the one known_hosts (known_hosts=, else ~/.ssh/known_hosts)
// records for HOST — an unknown host (ErrUnknownHost) or a changed key
// (ErrHostKeyMismatch) is refused, never accepted; login offers the keys of
// ssh-agent (SSH_AUTH_SOCK) and of keyfile= (else the first of
// ~/.ssh/id_ed25519, id_ecdsa, id_rsa that parses). libvirtd's socket on
// HOST is then reached through a direct-streamlocal@openssh.com channel;
// no virt-ssh-helper or nc runs on HOST. libvirt's parameters that would
// weaken this (no_verify=1, known_hosts_verify, command, netcat, proxy) are
// refused.
//
// A Conn also reaches the libvirt host itself: DialUnix (and Dialer, for
// the NBD client) connect to another unix socket there — through the same
// SSH connection for a remote host, so an NBD export of a pull-mode backup
// never crosses the network in the clear — and MkdirTemp/RemoveAll make and
// remove a run directory there (mkdir/rm -rf over SSH for a remote host,
// the only commands run there).
package libvirtconn
