package nbd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// serverConn is one accepted connection, tracked for Shutdown and
// Connections.
type serverConn struct {
	raw    net.Conn
	since  time.Time
	export string // set when the handshake chose an export
}

// Serve accepts connections on ln until ctx ends (it then closes ln and
// every connection it accepted, and returns nil) or Shutdown is called
// (ErrServerClosed). Serve may run on several listeners at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.trackListener(ln) {
		_ = ln.Close()
		return ErrServerClosed
	}
	defer s.untrackListener(ln)
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return s.acceptError(ctx, err)
		}
		if s.opts.Allow != nil && !s.opts.Allow(conn.RemoteAddr()) {
			s.log.Info("nbd: connection refused by allowlist", "remote", conn.RemoteAddr().String())
			_ = conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, conn)
		}()
	}
}

func (s *Server) acceptError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if s.isClosed() {
		return ErrServerClosed
	}
	return fmt.Errorf("nbd: accept: %w", err)
}

// Shutdown stops accepting connections, stops reading new requests, lets
// requests in flight finish and waits for connections to close. When ctx
// ends first, the remaining connections are closed hard.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for sc := range s.conns {
		_ = sc.raw.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for sc := range s.conns {
		_ = sc.raw.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) trackListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrackListener(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, ln)
}

func (s *Server) trackConn(conn net.Conn) (*serverConn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	sc := &serverConn{raw: conn, since: clock.Or(s.opts.Clock).Now()}
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	return sc, true
}

func (s *Server) untrackConn(sc *serverConn) {
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
	s.wg.Done()
}

// serveConn runs one connection; ctx ending closes it.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	sc, ok := s.trackConn(conn)
	if !ok {
		return
	}
	defer s.untrackConn(sc)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if err := s.runConn(ctx, sc); err != nil && !quietError(err) {
		s.log.Warn("nbd: connection failed", "remote", conn.RemoteAddr().String(), "err", err)
	}
}

func (s *Server) runConn(ctx context.Context, sc *serverConn) error {
	_ = sc.raw.SetDeadline(clock.Deadline(s.opts.HandshakeTimeout))
	ss := newServerSession(s, sc.raw)
	exp, err := ss.handshake(ctx)
	if err != nil || exp == nil {
		return err
	}
	if !s.beginTransmission(sc, exp) {
		return nil
	}
	t := newTransmission(ctx, ss, exp)
	err = t.run()
	ss.closeTLS()
	return err
}

// beginTransmission clears the handshake deadline and records the export
// the connection uses, unless Shutdown started.
func (s *Server) beginTransmission(sc *serverConn, exp *Export) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	sc.export = exp.Name
	_ = sc.raw.SetDeadline(time.Time{})
	return true
}

// quietError reports errors that are a normal end of a connection.
func quietError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, errClientAbort)
}
