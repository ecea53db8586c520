package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"
	"unicode/utf8"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// clientHandshake drives the client side of the fixed newstyle handshake.
type clientHandshake struct {
	raw      net.Conn // the transport; deadlines are set here
	conn     net.Conn // raw, or a *tls.Conn over it after STARTTLS
	r        *bufio.Reader
	fixed    bool
	noZeroes bool
	tls      bool
}

const readBufSize = 64 << 10

// startClientHandshake reads the server greeting and sends the client flags.
func startClientHandshake(conn net.Conn) (*clientHandshake, error) {
	h := &clientHandshake{raw: conn, conn: conn, r: bufio.NewReaderSize(conn, readBufSize)}
	var b [18]byte
	if _, err := io.ReadFull(h.r, b[:16]); err != nil {
		return nil, closedErr("read greeting", err)
	}
	if m := binary.BigEndian.Uint64(b[:]); m != nbdMagic {
		return nil, protoErrorf("bad greeting magic %#x (not an NBD server?)", m)
	}
	switch m := binary.BigEndian.Uint64(b[8:]); m {
	case optMagic:
	case oldstyleMagic:
		return nil, protoErrorf("server uses oldstyle negotiation (unsupported)")
	default:
		return nil, protoErrorf("bad handshake magic %#x", m)
	}
	if _, err := io.ReadFull(h.r, b[16:18]); err != nil {
		return nil, closedErr("read handshake flags", err)
	}
	flags := binary.BigEndian.Uint16(b[16:])
	h.fixed = flags&hsFlagFixedNewstyle != 0
	h.noZeroes = flags&hsFlagNoZeroes != 0
	var cf uint32
	if h.fixed {
		cf |= clientFlagFixedNewstyle
	}
	if h.noZeroes {
		cf |= clientFlagNoZeroes
	}
	binary.BigEndian.PutUint32(b[:4], cf)
	if _, err := h.conn.Write(b[:4]); err != nil {
		return nil, fmt.Errorf("nbd: send client flags: %w", err)
	}
	return h, nil
}

func (h *clientHandshake) sendOption(opt uint32, data []byte) error {
	b := make([]byte, 16+len(data))
	binary.BigEndian.PutUint64(b, optMagic)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], uint32(len(data)))
	copy(b[16:], data)
	if _, err := h.conn.Write(b); err != nil {
		return fmt.Errorf("nbd: send %s: %w", optName(opt), err)
	}
	return nil
}

// readOptReply reads one option reply for opt.
func (h *clientHandshake) readOptReply(opt uint32) (uint32, []byte, error) {
	var b [20]byte
	if _, err := io.ReadFull(h.r, b[:]); err != nil {
		return 0, nil, closedErr("read reply to "+optName(opt), err)
	}
	if m := binary.BigEndian.Uint64(b[:]); m != optReplyMagic {
		return 0, nil, protoErrorf("bad option reply magic %#x", m)
	}
	if o := binary.BigEndian.Uint32(b[8:]); o != opt {
		return 0, nil, protoErrorf("reply for %s while waiting for %s", optName(o), optName(opt))
	}
	typ := binary.BigEndian.Uint32(b[12:])
	n := binary.BigEndian.Uint32(b[16:])
	if n > maxOptReplyLen {
		return 0, nil, protoErrorf("%s reply of %d bytes", optName(opt), n)
	}
	data, err := readBounded(h.r, int(n))
	if err != nil {
		return 0, nil, closedErr("read reply to "+optName(opt), err)
	}
	return typ, data, nil
}

// replyError converts a reply that is neither ACK nor expected into an error.
func replyError(opt, typ uint32, data []byte) error {
	if typ&repErrBit != 0 {
		return &OptionError{Option: optName(opt), Reply: typ, Message: sanitize(data)}
	}
	return protoErrorf("unexpected %s in reply to %s", repName(typ), optName(opt))
}

func (h *clientHandshake) expectAck(opt uint32) error {
	typ, data, err := h.readOptReply(opt)
	if err != nil {
		return err
	}
	if typ == repAck {
		return nil
	}
	return replyError(opt, typ, data)
}

// startTLS upgrades the connection with NBD_OPT_STARTTLS.
func (h *clientHandshake) startTLS(ctx context.Context, cfg *tls.Config) error {
	if !h.fixed {
		return fmt.Errorf("nbd: TLS requested but server does not support fixed newstyle negotiation")
	}
	if err := h.sendOption(optStartTLS, nil); err != nil {
		return err
	}
	if err := h.expectAck(optStartTLS); err != nil {
		return fmt.Errorf("nbd: TLS requested but not available: %w", err)
	}
	if h.r.Buffered() != 0 {
		return protoErrorf("server sent data after accepting STARTTLS")
	}
	tc := tls.Client(h.raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("nbd: TLS handshake: %w", err)
	}
	h.conn, h.r, h.tls = tc, bufio.NewReaderSize(tc, readBufSize), true
	return nil
}

// structuredReply negotiates structured replies; false if refused.
func (h *clientHandshake) structuredReply() (bool, error) {
	if err := h.sendOption(optStructuredReply, nil); err != nil {
		return false, err
	}
	err := h.expectAck(optStructuredReply)
	var oe *OptionError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &oe) && oe.Reply != repErrTLSReqd:
		return false, nil
	}
	return false, err
}

func encodeNameAndQueries(export string, queries []string) []byte {
	n := 8 + len(export)
	for _, q := range queries {
		n += 4 + len(q)
	}
	b := make([]byte, 0, n)
	b = binary.BigEndian.AppendUint32(b, uint32(len(export)))
	b = append(b, export...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(queries)))
	for _, q := range queries {
		b = binary.BigEndian.AppendUint32(b, uint32(len(q)))
		b = append(b, q...)
	}
	return b
}

// metaContexts sends SET_META_CONTEXT or LIST_META_CONTEXT and collects the
// contexts (name → id) the server returns.
func (h *clientHandshake) metaContexts(opt uint32, export string, queries []string) (map[string]uint32, []string, error) {
	if err := h.sendOption(opt, encodeNameAndQueries(export, queries)); err != nil {
		return nil, nil, err
	}
	ids := map[string]uint32{}
	var names []string
	for i := 0; i < maxOptReplies; i++ {
		typ, data, err := h.readOptReply(opt)
		if err != nil {
			return nil, nil, err
		}
		switch typ {
		case repAck:
			return ids, names, nil
		case repMetaContext:
			if len(data) < 5 || len(data) > 4+maxStringLen || !utf8.Valid(data[4:]) {
				return nil, nil, protoErrorf("bad meta context reply of %d bytes", len(data))
			}
			name := string(data[4:])
			ids[name] = binary.BigEndian.Uint32(data)
			names = append(names, name)
		default:
			return nil, nil, replyError(opt, typ, data)
		}
	}
	return nil, nil, protoErrorf("too many replies to %s", optName(opt))
}

// ExportEntry is one export returned by NBD_OPT_LIST.
type ExportEntry struct {
	Name        string
	Description string
}

func (h *clientHandshake) list() ([]ExportEntry, error) {
	if err := h.sendOption(optList, nil); err != nil {
		return nil, err
	}
	var out []ExportEntry
	for i := 0; i < maxOptReplies; i++ {
		typ, data, err := h.readOptReply(optList)
		if err != nil {
			return nil, err
		}
		switch typ {
		case repAck:
			return out, nil
		case repServer:
			if len(data) < 4 || uint64(binary.BigEndian.Uint32(data)) > uint64(len(data)-4) {
				return nil, protoErrorf("bad NBD_REP_SERVER of %d bytes", len(data))
			}
			n := 4 + int(binary.BigEndian.Uint32(data))
			out = append(out, ExportEntry{Name: string(data[4:n]), Description: sanitize(data[n:])})
		default:
			return nil, replyError(optList, typ, data)
		}
	}
	return nil, protoErrorf("too many replies to NBD_OPT_LIST")
}

// info sends NBD_OPT_INFO or NBD_OPT_GO and collects the export details.
func (h *clientHandshake) info(opt uint32, export string) (ExportInfo, error) {
	reqs := []uint16{infoName, infoDescription, infoBlockSize}
	b := binary.BigEndian.AppendUint32(nil, uint32(len(export)))
	b = append(b, export...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(reqs)))
	for _, r := range reqs {
		b = binary.BigEndian.AppendUint16(b, r)
	}
	if err := h.sendOption(opt, b); err != nil {
		return ExportInfo{}, err
	}
	info := ExportInfo{Name: export}
	gotExport := false
	for i := 0; i < maxOptReplies; i++ {
		typ, data, err := h.readOptReply(opt)
		if err != nil {
			return ExportInfo{}, err
		}
		switch typ {
		case repAck:
			if !gotExport {
				return ExportInfo{}, protoErrorf("%s succeeded without NBD_INFO_EXPORT", optName(opt))
			}
			return info.withDefaults(), nil
		case repInfo:
			if err := applyInfo(&info, data, &gotExport); err != nil {
				return ExportInfo{}, err
			}
		default:
			return ExportInfo{}, replyError(opt, typ, data)
		}
	}
	return ExportInfo{}, protoErrorf("too many replies to %s", optName(opt))
}

// applyInfo decodes one NBD_REP_INFO payload into info.
func applyInfo(info *ExportInfo, d []byte, gotExport *bool) error {
	if len(d) < 2 {
		return protoErrorf("NBD_REP_INFO of %d bytes", len(d))
	}
	p := d[2:]
	switch binary.BigEndian.Uint16(d) {
	case infoExport:
		if len(p) != 10 {
			return protoErrorf("NBD_INFO_EXPORT of %d bytes", len(d))
		}
		size := binary.BigEndian.Uint64(p)
		if size > math.MaxInt64 {
			return protoErrorf("export size %d too large", size)
		}
		info.Size, info.Flags = int64(size), TransmissionFlags(binary.BigEndian.Uint16(p[8:]))
		*gotExport = true
	case infoName:
		info.Name = sanitize(p)
	case infoDescription:
		info.Description = sanitize(p)
	case infoBlockSize:
		if len(p) != 12 {
			return protoErrorf("NBD_INFO_BLOCK_SIZE of %d bytes", len(d))
		}
		info.MinBlockSize = binary.BigEndian.Uint32(p)
		info.PreferredBlockSize = binary.BigEndian.Uint32(p[4:])
		info.MaxBlockSize = binary.BigEndian.Uint32(p[8:])
		return info.checkBlockSizes()
	}
	return nil
}

// exportName enters transmission with the old NBD_OPT_EXPORT_NAME option.
func (h *clientHandshake) exportName(export string) (ExportInfo, error) {
	if err := h.sendOption(optExportName, []byte(export)); err != nil {
		return ExportInfo{}, err
	}
	n := 10
	if !h.noZeroes {
		n += 124
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(h.r, b); err != nil {
		return ExportInfo{}, fmt.Errorf("nbd: NBD_OPT_EXPORT_NAME %q refused (no such export?): %w", export, err)
	}
	size := binary.BigEndian.Uint64(b)
	if size > math.MaxInt64 {
		return ExportInfo{}, protoErrorf("export size %d too large", size)
	}
	info := ExportInfo{Name: export, Size: int64(size), Flags: TransmissionFlags(binary.BigEndian.Uint16(b[8:]))}
	return info.withDefaults(), nil
}

// goOrExportName enters transmission with NBD_OPT_GO, falling back to
// NBD_OPT_EXPORT_NAME when the server does not know NBD_OPT_GO.
func (h *clientHandshake) goOrExportName(export string, forceOld bool) (ExportInfo, error) {
	if !h.fixed || forceOld {
		return h.exportName(export)
	}
	info, err := h.info(optGo, export)
	var oe *OptionError
	if errors.As(err, &oe) && oe.Reply == repErrUnsup {
		return h.exportName(export)
	}
	return info, err
}

// abort ends the handshake politely; errors are ignored.
func (h *clientHandshake) abort() {
	_ = h.raw.SetReadDeadline(clock.Deadline(2 * time.Second))
	if h.sendOption(optAbort, nil) == nil {
		_, _, _ = h.readOptReply(optAbort)
	}
	if tc, ok := h.conn.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
}
