package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

var errClientAbort = errors.New("nbd: client aborted the handshake")

// Meta context IDs handed out by the server.
const baseAllocationID uint32 = 1

// serverSession is the per-connection handshake state.
type serverSession struct {
	s          *Server
	raw        net.Conn
	conn       net.Conn
	r          *bufio.Reader
	tls        bool
	noZeroes   bool
	structured bool
	metaExp    *Export // export named in the last SET_META_CONTEXT
	metaAlloc  bool    // base:allocation selected
}

func newServerSession(s *Server, conn net.Conn) *serverSession {
	return &serverSession{s: s, raw: conn, conn: conn, r: bufio.NewReaderSize(conn, readBufSize)}
}

func (ss *serverSession) closeTLS() {
	if tc, ok := ss.conn.(*tls.Conn); ok {
		_ = tc.Close()
	}
}

// handshake runs option haggling; it returns the export to serve, or nil
// when the client aborted.
func (ss *serverSession) handshake(ctx context.Context) (*Export, error) {
	if err := ss.greet(); err != nil {
		return nil, err
	}
	for {
		opt, data, err := ss.readOption()
		if err != nil {
			return nil, err
		}
		exp, done, err := ss.handleOption(ctx, opt, data)
		if err != nil || done {
			return exp, err
		}
	}
}

func (ss *serverSession) greet() error {
	var b [18]byte
	binary.BigEndian.PutUint64(b[:], nbdMagic)
	binary.BigEndian.PutUint64(b[8:], optMagic)
	binary.BigEndian.PutUint16(b[16:], hsFlagFixedNewstyle|hsFlagNoZeroes)
	if _, err := ss.conn.Write(b[:]); err != nil {
		return fmt.Errorf("nbd: send greeting: %w", err)
	}
	if _, err := io.ReadFull(ss.r, b[:4]); err != nil {
		return closedErr("read client flags", err)
	}
	cf := binary.BigEndian.Uint32(b[:])
	if cf&^clientFlagsKnown != 0 {
		return protoErrorf("unknown client flags %#x", cf)
	}
	ss.noZeroes = cf&clientFlagNoZeroes != 0
	return nil
}

func (ss *serverSession) readOption() (uint32, []byte, error) {
	var b [16]byte
	if _, err := io.ReadFull(ss.r, b[:]); err != nil {
		return 0, nil, closedErr("read option", err)
	}
	if m := binary.BigEndian.Uint64(b[:]); m != optMagic {
		return 0, nil, protoErrorf("bad option magic %#x", m)
	}
	opt, n := binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:])
	if n > maxOptionLen {
		return 0, nil, protoErrorf("%s with %d bytes of data", optName(opt), n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(ss.r, data); err != nil {
		return 0, nil, closedErr("read option data", err)
	}
	return opt, data, nil
}

func (ss *serverSession) reply(opt, typ uint32, data []byte) error {
	b := make([]byte, 20+len(data))
	binary.BigEndian.PutUint64(b, optReplyMagic)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], typ)
	binary.BigEndian.PutUint32(b[16:], uint32(len(data)))
	copy(b[20:], data)
	if _, err := ss.conn.Write(b); err != nil {
		return fmt.Errorf("nbd: send reply to %s: %w", optName(opt), err)
	}
	return nil
}

func (ss *serverSession) handleOption(ctx context.Context, opt uint32, data []byte) (*Export, bool, error) {
	if ss.s.opts.RequireTLS && !ss.tls && opt != optStartTLS && opt != optAbort {
		if opt == optExportName {
			return nil, true, errors.New("nbd: client skipped the required TLS upgrade")
		}
		return nil, false, ss.reply(opt, repErrTLSReqd, []byte("TLS is required"))
	}
	switch opt {
	case optExportName:
		return ss.optExportName(data)
	case optAbort:
		_ = ss.reply(opt, repAck, nil)
		return nil, true, errClientAbort
	case optList:
		return nil, false, ss.optList(data)
	case optStartTLS:
		return nil, false, ss.optStartTLS(ctx, data)
	case optInfo, optGo:
		return ss.optInfo(opt, data)
	case optStructuredReply:
		if len(data) != 0 {
			return nil, false, ss.reply(opt, repErrInvalid, []byte("unexpected data"))
		}
		ss.structured = true
		return nil, false, ss.reply(opt, repAck, nil)
	case optListMetaContext, optSetMetaContext:
		return nil, false, ss.optMeta(opt, data)
	}
	return nil, false, ss.reply(opt, repErrUnsup, []byte("unsupported option"))
}

// flags returns the transmission flags of e for this session.
func (ss *serverSession) flags(e *Export) TransmissionFlags {
	f := FlagHasFlags
	switch {
	case e.WriterAt != nil:
		// Flush and FUA are advertised even without a flush function:
		// writes are then as durable as the WriterAt makes them.
		f |= FlagSendTrim | FlagSendWriteZeroes | FlagSendFlush | FlagSendFUA
	case flusher(e) != nil:
		f |= FlagReadOnly | FlagCanMultiConn | FlagSendFlush
	default:
		f |= FlagReadOnly | FlagCanMultiConn
	}
	if ss.structured {
		f |= FlagSendDF
	}
	return f
}

func (ss *serverSession) optExportName(data []byte) (*Export, bool, error) {
	exp := ss.s.lookup(string(data))
	if exp == nil {
		return nil, true, fmt.Errorf("nbd: client asked for unknown export %q", sanitize(data))
	}
	b := make([]byte, 10, 134)
	binary.BigEndian.PutUint64(b, uint64(exp.Size))
	binary.BigEndian.PutUint16(b[8:], uint16(ss.flags(exp)))
	if !ss.noZeroes {
		b = b[:134]
	}
	if _, err := ss.conn.Write(b); err != nil {
		return nil, true, fmt.Errorf("nbd: send export info: %w", err)
	}
	ss.dropMetaUnless(exp)
	return exp, true, nil
}

func (ss *serverSession) dropMetaUnless(exp *Export) {
	if ss.metaExp != exp {
		ss.metaAlloc = false
	}
}

func (ss *serverSession) optList(data []byte) error {
	if len(data) != 0 {
		return ss.reply(optList, repErrInvalid, []byte("unexpected data"))
	}
	for _, e := range ss.s.exportList() {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(e.Name)))
		b = append(append(b, e.Name...), e.Description...)
		if err := ss.reply(optList, repServer, b); err != nil {
			return err
		}
	}
	return ss.reply(optList, repAck, nil)
}

func (ss *serverSession) optStartTLS(ctx context.Context, data []byte) error {
	cfg := ss.s.opts.TLSConfig
	switch {
	case cfg == nil:
		return ss.reply(optStartTLS, repErrUnsup, []byte("TLS not configured"))
	case ss.tls || len(data) != 0:
		return ss.reply(optStartTLS, repErrInvalid, []byte("TLS already active or unexpected data"))
	}
	if err := ss.reply(optStartTLS, repAck, nil); err != nil {
		return err
	}
	if ss.r.Buffered() != 0 {
		return protoErrorf("client sent data before the TLS handshake")
	}
	tc := tls.Server(ss.raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("nbd: TLS handshake: %w", err)
	}
	ss.conn, ss.r, ss.tls = tc, bufio.NewReaderSize(tc, readBufSize), true
	ss.structured, ss.metaExp, ss.metaAlloc = false, nil, false
	return nil
}
