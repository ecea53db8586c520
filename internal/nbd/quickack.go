package nbd

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// quickAckConn re-arms TCP quick-ACK before every read. During the
// handshake a server such as QEMU sends one reply in several small writes
// with Nagle's algorithm on: each later piece waits for our ACK of the
// previous one, which Linux would otherwise delay by up to 40 ms — about
// 90 ms per connection. Linux drops quick-ACK mode by itself, hence the
// re-arming; for large data reads one setsockopt per read is negligible.
type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

// withQuickAck wraps TCP connections; others are returned as they are.
func withQuickAck(conn net.Conn) net.Conn { return QuickAck(conn) }

// QuickAck wraps a TCP connection so every read re-arms quick-ACK (others
// are returned as they are): for request/reply protocols whose peer
// answers in several small writes with Nagle's algorithm on, such as
// QEMU's NBD server or an SSH server forwarding libvirt's replies.
func QuickAck(conn net.Conn) net.Conn {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return conn
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return conn
	}
	return &quickAckConn{TCPConn: tc, raw: raw}
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	_ = c.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
	return c.TCPConn.Read(p)
}
