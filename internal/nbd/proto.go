package nbd

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
)

// Magic numbers of the fixed newstyle handshake and the transmission phase.
const (
	nbdMagic             uint64 = 0x4e42444d41474943 // "NBDMAGIC"
	optMagic             uint64 = 0x49484156454f5054 // "IHAVEOPT"
	oldstyleMagic        uint64 = 0x00420281861253
	optReplyMagic        uint64 = 0x0003e889045565a9
	requestMagic         uint32 = 0x25609513
	simpleReplyMagic     uint32 = 0x67446698
	structuredReplyMagic uint32 = 0x668e33ef
)

// Handshake flags (server) and client flags.
const (
	hsFlagFixedNewstyle uint16 = 1 << 0
	hsFlagNoZeroes      uint16 = 1 << 1

	clientFlagFixedNewstyle uint32 = 1 << 0
	clientFlagNoZeroes      uint32 = 1 << 1
	clientFlagsKnown               = clientFlagFixedNewstyle | clientFlagNoZeroes
)

// TransmissionFlags are the per-export flags a server sends when the client
// enters the transmission phase.
type TransmissionFlags uint16

// Transmission flags defined by the NBD protocol.
const (
	FlagHasFlags        TransmissionFlags = 1 << 0
	FlagReadOnly        TransmissionFlags = 1 << 1
	FlagSendFlush       TransmissionFlags = 1 << 2
	FlagSendFUA         TransmissionFlags = 1 << 3
	FlagRotational      TransmissionFlags = 1 << 4
	FlagSendTrim        TransmissionFlags = 1 << 5
	FlagSendWriteZeroes TransmissionFlags = 1 << 6
	FlagSendDF          TransmissionFlags = 1 << 7
	FlagCanMultiConn    TransmissionFlags = 1 << 8
	FlagSendResize      TransmissionFlags = 1 << 9
	FlagSendCache       TransmissionFlags = 1 << 10
	FlagSendFastZero    TransmissionFlags = 1 << 11
)

// Option codes.
const (
	optExportName      uint32 = 1
	optAbort           uint32 = 2
	optList            uint32 = 3
	optStartTLS        uint32 = 5
	optInfo            uint32 = 6
	optGo              uint32 = 7
	optStructuredReply uint32 = 8
	optListMetaContext uint32 = 9
	optSetMetaContext  uint32 = 10
)

// Option reply types. Error replies have bit 31 set.
const (
	repAck         uint32 = 1
	repServer      uint32 = 2
	repInfo        uint32 = 3
	repMetaContext uint32 = 4

	repErrBit           uint32 = 1 << 31
	repErrUnsup         uint32 = repErrBit + 1
	repErrPolicy        uint32 = repErrBit + 2
	repErrInvalid       uint32 = repErrBit + 3
	repErrPlatform      uint32 = repErrBit + 4
	repErrTLSReqd       uint32 = repErrBit + 5
	repErrUnknown       uint32 = repErrBit + 6
	repErrShutdown      uint32 = repErrBit + 7
	repErrBlockSizeReqd uint32 = repErrBit + 8
	repErrTooBig        uint32 = repErrBit + 9
)

// Information types of NBD_OPT_INFO / NBD_OPT_GO.
const (
	infoExport      uint16 = 0
	infoName        uint16 = 1
	infoDescription uint16 = 2
	infoBlockSize   uint16 = 3
)

// Commands.
const (
	cmdRead        uint16 = 0
	cmdWrite       uint16 = 1
	cmdDisc        uint16 = 2
	cmdFlush       uint16 = 3
	cmdTrim        uint16 = 4
	cmdCache       uint16 = 5
	cmdWriteZeroes uint16 = 6
	cmdBlockStatus uint16 = 7
)

// Command flags.
const (
	cmdFlagFUA      uint16 = 1 << 0
	cmdFlagNoHole   uint16 = 1 << 1
	cmdFlagDF       uint16 = 1 << 2
	cmdFlagReqOne   uint16 = 1 << 3
	cmdFlagFastZero uint16 = 1 << 4
)

// Structured reply flags and chunk types.
const (
	replyFlagDone uint16 = 1 << 0

	chunkNone        uint16 = 0
	chunkOffsetData  uint16 = 1
	chunkOffsetHole  uint16 = 2
	chunkBlockStatus uint16 = 5
	chunkErrorBit    uint16 = 1 << 15
	chunkError       uint16 = chunkErrorBit + 1
	chunkErrorOffset uint16 = chunkErrorBit + 2
)

// Block status flags. For the "base:allocation" context StateHole and
// StateZero apply; for "qemu:dirty-bitmap:NAME" contexts StateDirty.
const (
	StateHole  uint32 = 1 << 0
	StateZero  uint32 = 1 << 1
	StateDirty uint32 = 1 << 0
)

// ContextBaseAllocation is the standard allocation metadata context.
const ContextBaseAllocation = "base:allocation"

// ContextDirtyBitmapPrefix prefixes QEMU's dirty bitmap contexts.
const ContextDirtyBitmapPrefix = "qemu:dirty-bitmap:"

// Limits.
const (
	// MaxRequestSize is the largest READ or WRITE payload this package
	// sends or accepts (32 MiB, the size every known server accepts).
	MaxRequestSize = 32 << 20
	// DefaultPort is the IANA-assigned NBD port.
	DefaultPort = 10809

	maxStringLen          = 4096
	maxOptionLen          = 64 << 10      // largest option a server accepts
	maxOptReplyLen        = 1 << 20       // largest option reply a client accepts
	maxOptReplies         = 1 << 16       // replies to one LIST/META option
	maxBlockStatusPayload = 4 + 8<<20     // 1 Mi descriptors per chunk
	maxErrorPayload       = 6 + 65535 + 8 // error chunks: u16 message length
	maxBlockStatusLen     = 1<<32 - 4096  // largest BLOCK_STATUS length sent
	maxZeroTrimLen        = 1 << 30       // largest TRIM/WRITE_ZEROES sent
	requestHeaderLen      = 28
	simpleReplyLen        = 16
	chunkHeaderLen        = 20
	defaultPreferredBlock = 4096
)

// request is an NBD transmission request header.
type request struct {
	flags  uint16
	typ    uint16
	handle uint64
	offset uint64
	length uint32
}

func (r *request) encode(b []byte) {
	binary.BigEndian.PutUint32(b[0:], requestMagic)
	binary.BigEndian.PutUint16(b[4:], r.flags)
	binary.BigEndian.PutUint16(b[6:], r.typ)
	binary.BigEndian.PutUint64(b[8:], r.handle)
	binary.BigEndian.PutUint64(b[16:], r.offset)
	binary.BigEndian.PutUint32(b[24:], r.length)
}

func decodeRequest(b []byte) (request, error) {
	if len(b) < requestHeaderLen {
		return request{}, protoErrorf("short request header (%d bytes)", len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != requestMagic {
		return request{}, protoErrorf("bad request magic %#x", m)
	}
	return request{
		flags:  binary.BigEndian.Uint16(b[4:]),
		typ:    binary.BigEndian.Uint16(b[6:]),
		handle: binary.BigEndian.Uint64(b[8:]),
		offset: binary.BigEndian.Uint64(b[16:]),
		length: binary.BigEndian.Uint32(b[24:]),
	}, nil
}

// chunkHeader is a structured reply chunk header without its magic.
type chunkHeader struct {
	flags  uint16
	typ    uint16
	handle uint64
	length uint32
}

func encodeChunkHeader(b []byte, h chunkHeader) {
	binary.BigEndian.PutUint32(b[0:], structuredReplyMagic)
	binary.BigEndian.PutUint16(b[4:], h.flags)
	binary.BigEndian.PutUint16(b[6:], h.typ)
	binary.BigEndian.PutUint64(b[8:], h.handle)
	binary.BigEndian.PutUint32(b[16:], h.length)
}

func encodeSimpleReply(b []byte, code uint32, handle uint64) {
	binary.BigEndian.PutUint32(b[0:], simpleReplyMagic)
	binary.BigEndian.PutUint32(b[4:], code)
	binary.BigEndian.PutUint64(b[8:], handle)
}

// descriptor is one block status descriptor on the wire.
type descriptor struct {
	length uint32
	flags  uint32
}

// parseBlockStatus decodes an NBD_REPLY_TYPE_BLOCK_STATUS payload.
func parseBlockStatus(b []byte) (uint32, []descriptor, error) {
	if len(b) < 12 || (len(b)-4)%8 != 0 {
		return 0, nil, protoErrorf("block status payload of %d bytes", len(b))
	}
	id := binary.BigEndian.Uint32(b)
	descs := make([]descriptor, 0, (len(b)-4)/8)
	for p := b[4:]; len(p) >= 8; p = p[8:] {
		d := descriptor{binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])}
		if d.length == 0 {
			return 0, nil, protoErrorf("block status descriptor of length 0")
		}
		descs = append(descs, d)
	}
	return id, descs, nil
}

func encodeBlockStatus(id uint32, descs []descriptor) []byte {
	b := make([]byte, 4+8*len(descs))
	binary.BigEndian.PutUint32(b, id)
	for i, d := range descs {
		binary.BigEndian.PutUint32(b[4+8*i:], d.length)
		binary.BigEndian.PutUint32(b[8+8*i:], d.flags)
	}
	return b
}

// errorChunk is a decoded NBD_REPLY_TYPE_ERROR(_OFFSET) payload.
type errorChunk struct {
	code      uint32
	message   string
	offset    uint64
	hasOffset bool
}

// parseErrorChunk decodes the payload of an error chunk of type typ.
func parseErrorChunk(typ uint16, b []byte) (errorChunk, error) {
	if len(b) < 6 {
		return errorChunk{}, protoErrorf("error chunk of %d bytes", len(b))
	}
	e := errorChunk{code: binary.BigEndian.Uint32(b)}
	mlen := int(binary.BigEndian.Uint16(b[4:]))
	if mlen > len(b)-6 {
		return errorChunk{}, protoErrorf("error message length %d exceeds chunk", mlen)
	}
	e.message = sanitize(b[6 : 6+mlen])
	rest := b[6+mlen:]
	if typ == chunkErrorOffset {
		if len(rest) != 8 {
			return errorChunk{}, protoErrorf("error offset chunk with %d trailing bytes", len(rest))
		}
		e.offset, e.hasOffset = binary.BigEndian.Uint64(rest), true
	}
	return e, nil
}

func encodeErrorChunk(code uint32, msg string) []byte {
	if len(msg) > maxStringLen {
		msg = msg[:maxStringLen]
	}
	b := make([]byte, 6+len(msg))
	binary.BigEndian.PutUint32(b, code)
	binary.BigEndian.PutUint16(b[4:], uint16(len(msg)))
	copy(b[6:], msg)
	return b
}

// sanitize turns peer-supplied bytes into a printable, bounded string.
func sanitize(b []byte) string {
	if len(b) > 512 {
		b = b[:512]
	}
	s := strings.ToValidUTF8(string(b), "?")
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}

func optName(opt uint32) string {
	names := map[uint32]string{
		optExportName: "NBD_OPT_EXPORT_NAME", optAbort: "NBD_OPT_ABORT",
		optList: "NBD_OPT_LIST", optStartTLS: "NBD_OPT_STARTTLS",
		optInfo: "NBD_OPT_INFO", optGo: "NBD_OPT_GO",
		optStructuredReply: "NBD_OPT_STRUCTURED_REPLY",
		optListMetaContext: "NBD_OPT_LIST_META_CONTEXT",
		optSetMetaContext:  "NBD_OPT_SET_META_CONTEXT",
	}
	if n, ok := names[opt]; ok {
		return n
	}
	return fmt.Sprintf("option %d", opt)
}

func repName(rep uint32) string {
	names := map[uint32]string{
		repAck: "NBD_REP_ACK", repServer: "NBD_REP_SERVER", repInfo: "NBD_REP_INFO",
		repMetaContext: "NBD_REP_META_CONTEXT", repErrUnsup: "NBD_REP_ERR_UNSUP",
		repErrPolicy: "NBD_REP_ERR_POLICY", repErrInvalid: "NBD_REP_ERR_INVALID",
		repErrPlatform: "NBD_REP_ERR_PLATFORM", repErrTLSReqd: "NBD_REP_ERR_TLS_REQD",
		repErrUnknown: "NBD_REP_ERR_UNKNOWN", repErrShutdown: "NBD_REP_ERR_SHUTDOWN",
		repErrBlockSizeReqd: "NBD_REP_ERR_BLOCK_SIZE_REQD", repErrTooBig: "NBD_REP_ERR_TOO_BIG",
	}
	if n, ok := names[rep]; ok {
		return n
	}
	return fmt.Sprintf("reply type %#x", rep)
}

func cmdName(cmd uint16) string {
	names := []string{"READ", "WRITE", "DISC", "FLUSH", "TRIM", "CACHE", "WRITE_ZEROES", "BLOCK_STATUS"}
	if int(cmd) < len(names) {
		return "NBD_CMD_" + names[cmd]
	}
	return fmt.Sprintf("command %d", cmd)
}
