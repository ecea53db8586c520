package nfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Default ports, as vPower NFS uses them.
const (
	PortmapPort = 111
	MountPort   = 1058
	NFSPort     = 2049
)

const (
	maxInFlight  = 8 // requests served concurrently per TCP connection
	writeTimeout = time.Minute
)

// Listeners carry the sockets Serve uses. Any may be nil; that service is
// then not offered on that transport.
type Listeners struct {
	PortmapTCP, MountTCP, NFSTCP net.Listener
	PortmapUDP, MountUDP         net.PacketConn
}

// Close closes every non-nil socket.
func (l Listeners) Close() error {
	var errs []error
	for _, c := range []interface{ Close() error }{l.PortmapTCP, l.MountTCP, l.NFSTCP, l.PortmapUDP, l.MountUDP} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// Listen opens the sockets for host: portmapper and MOUNT on TCP and UDP,
// NFS on TCP. Use PortmapPort, MountPort and NFSPort for the standard
// ports; 0 picks a free port (the same one for TCP and UDP); a negative
// port leaves that service out.
func Listen(host string, portmap, mount, nfs int) (Listeners, error) {
	var l Listeners
	var err error
	if portmap >= 0 {
		if l.PortmapTCP, l.PortmapUDP, err = listenBoth(host, portmap); err != nil {
			return Listeners{}, fmt.Errorf("nfs: portmapper: %w", err)
		}
	}
	if mount >= 0 {
		if l.MountTCP, l.MountUDP, err = listenBoth(host, mount); err != nil {
			_ = l.Close()
			return Listeners{}, fmt.Errorf("nfs: mount: %w", err)
		}
	}
	if nfs >= 0 {
		if l.NFSTCP, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(nfs))); err != nil {
			_ = l.Close()
			return Listeners{}, fmt.Errorf("nfs: %w", err)
		}
	}
	return l, nil
}

// listenBoth binds TCP and UDP on the same port.
func listenBoth(host string, port int) (net.Listener, net.PacketConn, error) {
	for try := 0; ; try++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, nil, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return ln, pc, nil
		}
		_ = ln.Close()
		if port != 0 || try == 10 {
			return nil, nil, err
		}
	}
}

// Serve runs the three RPC programs until ctx ends: portmapper (100000
// v2) on TCP and UDP, MOUNT (100005 v3) on TCP and UDP, NFS (100003 v3) on
// TCP. The portmapper answers GETPORT for MOUNT and NFS with the ports in
// use. Serve closes the sockets and returns nil when ctx ends, or the
// first error of a socket.
func (s *Server) Serve(ctx context.Context, l Listeners) error {
	type svc struct {
		prog uint32
		ln   net.Listener
		pc   net.PacketConn
	}
	all := []svc{
		{progPortmap, l.PortmapTCP, nil}, {progPortmap, nil, l.PortmapUDP},
		{progMount, l.MountTCP, nil}, {progMount, nil, l.MountUDP},
		{progNFS, l.NFSTCP, nil},
	}
	s.registerBuiltins(l)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(all))
	n := 0
	for _, v := range all {
		if v.ln == nil && v.pc == nil {
			continue
		}
		n++
		wg.Go(func() {
			var err error
			if v.ln != nil {
				err = s.serveTCP(ctx, v.ln, v.prog)
			} else {
				err = s.serveUDP(ctx, v.pc, v.prog)
			}
			if err != nil {
				errc <- err
				cancel()
			}
		})
	}
	if n == 0 {
		return ErrNoListeners
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func (s *Server) serveTCP(ctx context.Context, ln net.Listener, prog uint32) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	defer func() { _ = ln.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("nfs: accept %s: %w", progName(prog), err)
		}
		wg.Go(func() { s.serveConn(ctx, conn, prog) })
	}
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn, prog uint32) {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	defer func() { _ = conn.Close() }()
	remote := addrOf(conn.RemoteAddr())
	if prog == progNFS && s.allowed(remote) {
		s.connOpened(remote)
		defer s.connClosed(remote)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	sem := make(chan struct{}, maxInFlight)
	var wmu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		msg, err := readRecord(br, nil, MaxRecordSize)
		if err != nil {
			if ctx.Err() == nil && !isClosed(err) {
				s.log.Info("nfs: connection closed", "program", progName(prog), "remote", conn.RemoteAddr().String(), "err", err)
			}
			return
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			reply := s.handle(prog, msg, remote, true)
			if reply == nil {
				return
			}
			wmu.Lock()
			defer wmu.Unlock()
			_ = conn.SetWriteDeadline(clock.Deadline(writeTimeout))
			if _, err := conn.Write(reply); err != nil {
				_ = conn.Close()
			}
		})
	}
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}

func (s *Server) serveUDP(ctx context.Context, pc net.PacketConn, prog uint32) error {
	stop := context.AfterFunc(ctx, func() { _ = pc.Close() })
	defer stop()
	defer func() { _ = pc.Close() }()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("nfs: read %s/udp: %w", progName(prog), err)
		}
		reply := s.handle(prog, buf[:n], addrOf(from), false)
		if reply != nil && len(reply) <= 65507 {
			_, _ = pc.WriteTo(reply, from)
		}
	}
}

func addrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// handle answers one RPC message for the program served on its socket;
// nil means no reply.
func (s *Server) handle(prog uint32, msg []byte, remote netip.Addr, tcp bool) (reply []byte) {
	c, rerr, ok := parseCall(msg)
	if !ok {
		return nil
	}
	if rerr == nil {
		c.remote = remote
		rerr = checkProgram(prog, &c)
	}
	if rerr != nil {
		return errorReply(c.xid, rerr, tcp)
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("nfs: procedure panicked", "program", progName(prog), "proc", c.proc, "panic", fmt.Sprint(r))
			reply = errorReply(c.xid, &rpcError{stat: acceptSystemErr}, tcp)
		}
	}()
	d := &decoder{b: c.args}
	var e *encoder
	var stat uint32
	switch prog {
	case progPortmap:
		e = newReply(256)
		stat = s.portmap(&c, d, e)
	case progMount:
		e = newReply(256)
		stat = s.mount(&c, d, e)
	default:
		e = newReply(nfsReplyHint(c.proc))
		stat = s.nfs(&c, d, e)
	}
	if stat != acceptSuccess {
		return errorReply(c.xid, &rpcError{stat: stat}, tcp)
	}
	return finishReply(e, c.xid, acceptSuccess, tcp)
}

func checkProgram(prog uint32, c *rpcCall) *rpcError {
	if c.prog != prog {
		return &rpcError{stat: acceptProgUnavail}
	}
	v := progVersion(prog)
	if c.vers != v {
		return &rpcError{stat: acceptProgMismatch, lo: v, hi: v}
	}
	return nil
}
