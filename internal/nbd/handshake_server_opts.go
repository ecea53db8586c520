package nbd

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// parseInfoRequest decodes NBD_OPT_INFO / NBD_OPT_GO data.
func parseInfoRequest(d []byte) (string, []uint16, error) {
	if len(d) < 6 {
		return "", nil, errors.New("option data too short")
	}
	n := binary.BigEndian.Uint32(d)
	if uint64(n) > uint64(len(d)-6) || n > maxStringLen {
		return "", nil, errors.New("bad export name length")
	}
	name := d[4 : 4+n]
	if !utf8.Valid(name) {
		return "", nil, errors.New("export name is not UTF-8")
	}
	rest := d[4+n:]
	count := int(binary.BigEndian.Uint16(rest))
	if len(rest) != 2+2*count {
		return "", nil, errors.New("bad information request count")
	}
	reqs := make([]uint16, count)
	for i := range reqs {
		reqs[i] = binary.BigEndian.Uint16(rest[2+2*i:])
	}
	return string(name), reqs, nil
}

// parseMetaRequest decodes LIST/SET_META_CONTEXT data.
func parseMetaRequest(d []byte) (string, []string, error) {
	name, rest, err := readString(d)
	if err != nil {
		return "", nil, err
	}
	if len(rest) < 4 {
		return "", nil, errors.New("missing query count")
	}
	count := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(count)*4 > uint64(len(rest)) {
		return "", nil, errors.New("query count exceeds option length")
	}
	queries := make([]string, 0, count)
	for range count {
		var q string
		if q, rest, err = readString(rest); err != nil {
			return "", nil, err
		}
		queries = append(queries, q)
	}
	if len(rest) != 0 {
		return "", nil, errors.New("trailing bytes after queries")
	}
	return name, queries, nil
}

// readString reads a u32-length-prefixed UTF-8 string.
func readString(d []byte) (string, []byte, error) {
	if len(d) < 4 {
		return "", nil, errors.New("string length missing")
	}
	n := binary.BigEndian.Uint32(d)
	if uint64(n) > uint64(len(d)-4) || n > maxStringLen {
		return "", nil, errors.New("bad string length")
	}
	s := d[4 : 4+n]
	if !utf8.Valid(s) {
		return "", nil, errors.New("string is not UTF-8")
	}
	return string(s), d[4+n:], nil
}

func (ss *serverSession) optInfo(opt uint32, data []byte) (*Export, bool, error) {
	if ss.s.opts.disableGo {
		return nil, false, ss.reply(opt, repErrUnsup, []byte("disabled"))
	}
	name, reqs, err := parseInfoRequest(data)
	if err != nil {
		return nil, false, ss.reply(opt, repErrInvalid, []byte(err.Error()))
	}
	exp := ss.s.lookup(name)
	if exp == nil {
		return nil, false, ss.reply(opt, repErrUnknown, []byte("unknown export"))
	}
	if err := ss.sendInfos(opt, name, exp, reqs); err != nil {
		return nil, false, err
	}
	if err := ss.reply(opt, repAck, nil); err != nil || opt == optInfo {
		return nil, false, err
	}
	ss.dropMetaUnless(exp)
	return exp, true, nil
}

func (ss *serverSession) sendInfos(opt uint32, name string, exp *Export, reqs []uint16) error {
	b := binary.BigEndian.AppendUint16(nil, infoExport)
	b = binary.BigEndian.AppendUint64(b, uint64(exp.Size))
	b = binary.BigEndian.AppendUint16(b, uint16(ss.flags(exp)))
	infos := [][]byte{b}
	// Block sizes are always sent: min 1, preferred 4 KiB, max 32 MiB.
	bs := binary.BigEndian.AppendUint16(nil, infoBlockSize)
	bs = binary.BigEndian.AppendUint32(bs, 1)
	bs = binary.BigEndian.AppendUint32(bs, defaultPreferredBlock)
	bs = binary.BigEndian.AppendUint32(bs, MaxRequestSize)
	infos = append(infos, bs)
	for _, r := range reqs {
		switch {
		case r == infoName:
			infos = append(infos, append(binary.BigEndian.AppendUint16(nil, infoName), exp.Name...))
		case r == infoDescription && exp.Description != "":
			infos = append(infos, append(binary.BigEndian.AppendUint16(nil, infoDescription), exp.Description...))
		}
	}
	for _, info := range infos {
		if err := ss.reply(opt, repInfo, info); err != nil {
			return err
		}
	}
	return nil
}

func (ss *serverSession) optMeta(opt uint32, data []byte) error {
	if !ss.structured {
		return ss.reply(opt, repErrInvalid, []byte("negotiate structured replies first"))
	}
	name, queries, err := parseMetaRequest(data)
	if err != nil {
		return ss.reply(opt, repErrInvalid, []byte(err.Error()))
	}
	exp := ss.s.lookup(name)
	if exp == nil {
		return ss.reply(opt, repErrUnknown, []byte("unknown export"))
	}
	matched := matchBaseAllocation(opt, queries)
	id := uint32(0)
	if opt == optSetMetaContext {
		ss.metaExp, ss.metaAlloc, id = exp, matched, baseAllocationID
	}
	if matched {
		b := binary.BigEndian.AppendUint32(nil, id)
		if err := ss.reply(opt, repMetaContext, append(b, ContextBaseAllocation...)); err != nil {
			return err
		}
	}
	return ss.reply(opt, repAck, nil)
}

// matchBaseAllocation reports whether the queries select base:allocation,
// the only context this server offers. LIST with no query lists all, and
// LIST accepts the namespace wildcard "base:".
func matchBaseAllocation(opt uint32, queries []string) bool {
	if opt == optListMetaContext && len(queries) == 0 {
		return true
	}
	for _, q := range queries {
		if q == ContextBaseAllocation || (opt == optListMetaContext && q == "base:") {
			return true
		}
	}
	return false
}
