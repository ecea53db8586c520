package fsmap

import (
	"encoding/binary"
	"fmt"
)

// xfs log constants (xfs_log_format.h).
const (
	xlogMagic           = 0xFEEDBABE
	xlogUnmountTrans    = 0x20
	xlogClientXFS       = 0xAA
	xlogHeaderCycle     = 32768 // bytes of data one header block describes
	xlogMaxHeaders      = 8     // header blocks of the largest (256 KiB) record
	xlogMaxRecord       = 256 << 10
	xlogFmtLE           = 1 // h_fmt of a little-endian Linux log
	xlogClientTrans     = 0x69
	xlogContinueTrans   = 0x4
	xlogWasContTrans    = 0x8
	xfsTransHeaderMagic = 0x5452414e // "TRAN", host order
	xfsLIBuf            = 0x123c     // buffer log item
	// xlogWindow bounds how far from the head the check looks: more than
	// the 8 in-core logs of at most 256 KiB that can be in flight.
	xlogWindow = 4 << 20
)

// logClean checks that recovering the internal log would change nothing
// but the superblock: the file system was unmounted (the log ends in an
// unmount record) or frozen (the log is covered: since its tail only
// dummy superblock transactions), so the free-space metadata on disk is
// complete. Any doubt is an error.
func (fs *xfsFS) logClean() error {
	if fs.logstart == 0 {
		return fmt.Errorf("%w: external log, its state cannot be checked", errDamaged)
	}
	ag, agbno := fs.logstart>>fs.agblklog, fs.logstart&(1<<fs.agblklog-1)
	if ag >= fs.agcount || agbno >= fs.agLength(ag) || fs.logbytes < 64*512 {
		return fmt.Errorf("%w: log at block %d", errDamaged, fs.logstart)
	}
	l := &xlog{fs: fs, off: int64(ag*fs.agblocks+agbno) * fs.bs, bbs: fs.logbytes / 512}
	if l.off+fs.logbytes > int64(fs.dblocks)*fs.bs {
		return fmt.Errorf("%w: log reaches past the file system", errDamaged)
	}
	head, cycle, err := l.head()
	if err != nil {
		return err
	}
	tail, tailCycle, err := l.lastRecord(head, cycle)
	if err != nil {
		return err
	}
	return l.replayOnlySuper(tail, tailCycle, head, cycle)
}

type xlog struct {
	fs  *xfsFS
	off int64 // byte offset of the log in the volume
	bbs int64 // 512-byte blocks
}

func (l *xlog) bb(i int64) ([]byte, error) {
	b := make([]byte, 512)
	if err := readFull(l.fs.r, l.fs.size, b, l.off+i*512); err != nil {
		return nil, err
	}
	return b, nil
}

// cycle is the cycle number stamped on log block i.
func (l *xlog) cycle(i int64) (uint32, error) {
	b, err := l.bb(i)
	if err != nil {
		return 0, err
	}
	if w := binary.BigEndian.Uint32(b); w != xlogMagic {
		return w, nil
	}
	return binary.BigEndian.Uint32(b[4:]), nil
}

// head finds the block after the last one written and the cycle of the
// last record; it returns head == bbs when the last record ends at the
// log's end. Within xlogWindow after the head no block may carry the
// newer cycle (a write that landed past a hole).
func (l *xlog) head() (int64, uint32, error) {
	first, err := l.cycle(0)
	if err != nil {
		return 0, 0, err
	}
	last, err := l.cycle(l.bbs - 1)
	if err != nil {
		return 0, 0, err
	}
	if first == last {
		return l.bbs, first, nil
	}
	if first == 0 || last != first-1 {
		return 0, 0, fmt.Errorf("%w: log cycles %d and %d at its ends", errDamaged, first, last)
	}
	lo, hi := int64(0), l.bbs-1
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		c, err := l.cycle(mid)
		if err != nil {
			return 0, 0, err
		}
		if c == first {
			lo = mid
		} else {
			hi = mid
		}
	}
	if err := l.allCycle(hi, min(l.bbs, hi+xlogWindow/512), last); err != nil {
		return 0, 0, err
	}
	return hi, first, nil
}

// allCycle checks that log blocks [from, to) all carry cycle c, reading
// them in batches.
func (l *xlog) allCycle(from, to int64, c uint32) error {
	const batch = 512 // blocks: 256 KiB
	for i := from; i < to; i += batch {
		b := make([]byte, min(batch, to-i)*512)
		if err := readFull(l.fs.r, l.fs.size, b, l.off+i*512); err != nil {
			return err
		}
		for k := 0; k < len(b); k += 512 {
			got := binary.BigEndian.Uint32(b[k:])
			if got == xlogMagic {
				got = binary.BigEndian.Uint32(b[k+4:])
			}
			if got != c {
				return fmt.Errorf("%w: log block %d of cycle %d after the head %d", errDamaged, i+int64(k/512), got, from)
			}
		}
	}
	return nil
}

// lastRecord finds the record that ends at head (the newest) and returns
// its tail: the oldest block recovery would replay from, and its cycle.
func (l *xlog) lastRecord(head int64, cycle uint32) (int64, uint32, error) {
	be := binary.BigEndian
	for i := head - 1; i >= 0 && i >= head-xlogWindow/512; i-- {
		b, err := l.bb(i)
		if err != nil {
			return 0, 0, err
		}
		if be.Uint32(b) != xlogMagic {
			if be.Uint32(b) != cycle {
				return 0, 0, fmt.Errorf("%w: log block %d of cycle %d before the head", errDamaged, i, be.Uint32(b))
			}
			continue
		}
		rec, err := l.header(i, cycle, b)
		if err != nil {
			return 0, 0, err
		}
		if i+rec.hbs+rec.dataBBs != head {
			return 0, 0, fmt.Errorf("%w: the last log record (block %d) does not end at the head %d", errDamaged, i, head)
		}
		return int64(uint32(rec.tail)), uint32(rec.tail >> 32), nil
	}
	return 0, 0, fmt.Errorf("%w: no log record before the head", errDamaged)
}

// logRec is one log record: its header fields and its data with the
// first word of each block restored.
type logRec struct {
	hbs, dataBBs int64
	tail         uint64
	ops          int
	hdr          []byte
	data         []byte
}

// header parses the record header b found at block pos of cycle.
func (l *xlog) header(pos int64, cycle uint32, b []byte) (*logRec, error) {
	be := binary.BigEndian
	if be.Uint32(b) != xlogMagic || be.Uint32(b[4:]) != cycle || be.Uint64(b[16:]) != uint64(cycle)<<32|uint64(pos) {
		return nil, fmt.Errorf("%w: no log record of cycle %d at block %d", errDamaged, cycle, pos)
	}
	if be.Uint32(b[300:]) != xlogFmtLE {
		return nil, fmt.Errorf("%w: log not written by a little-endian Linux guest", errDamaged)
	}
	rec := &logRec{hbs: 1, tail: be.Uint64(b[24:]), ops: int(be.Uint32(b[40:])), hdr: b}
	if size := int64(be.Uint32(b[320:])); be.Uint32(b[8:])&2 != 0 && size > xlogHeaderCycle {
		rec.hbs = (size + xlogHeaderCycle - 1) / xlogHeaderCycle
	}
	n := int64(be.Uint32(b[12:]))
	if rec.hbs > xlogMaxHeaders || n < 1 || n > xlogMaxRecord {
		return nil, fmt.Errorf("%w: log record at block %d: %d header blocks, %d bytes", errDamaged, pos, rec.hbs, n)
	}
	rec.dataBBs = (n + 511) / 512
	return rec, nil
}

// readRecord reads the record at block pos (of cycle) with its data.
func (l *xlog) readRecord(pos int64, cycle uint32) (*logRec, error) {
	b, err := l.bb(pos)
	if err != nil {
		return nil, err
	}
	rec, err := l.header(pos, cycle, b)
	if err != nil {
		return nil, err
	}
	hdrs := [][]byte{b}
	for h := int64(1); h < rec.hbs; h++ {
		x, err := l.bb((pos + h) % l.bbs)
		if err != nil {
			return nil, err
		}
		hdrs = append(hdrs, x)
	}
	n := int64(binary.BigEndian.Uint32(b[12:]))
	rec.data = make([]byte, rec.dataBBs*512)
	for j := int64(0); j < rec.dataBBs; j++ {
		d, err := l.bb((pos + rec.hbs + j) % l.bbs)
		if err != nil {
			return nil, err
		}
		h, k := j/64, j%64
		if h >= rec.hbs {
			return nil, fmt.Errorf("%w: log record at block %d longer than its headers describe", errDamaged, pos)
		}
		src := hdrs[h][4+4*k:] // xlog_rec_ext_header: xh_cycle, then the saved words
		if h == 0 {
			src = b[44+4*k:]
		}
		copy(d[:4], src[:4])
		copy(rec.data[j*512:], d)
	}
	rec.data = rec.data[:n]
	return rec, nil
}

// replayOnlySuper walks the records recovery would replay, from the tail
// to the head, and checks that they change nothing but the superblock:
// an unmounted log (one unmount record) or one a freeze covered (dummy
// superblock transactions). Then the free-space B+trees on disk are what
// the file system would use.
func (l *xlog) replayOnlySuper(tail int64, tailCycle uint32, head int64, cycle uint32) error {
	var dist int64
	switch {
	case tailCycle == cycle && tail < head:
		dist = head - tail
	case tailCycle+1 == cycle && tail >= head && tail < l.bbs:
		dist = l.bbs - tail + head
	default:
		return fmt.Errorf("%w: log tail %d/%d and head %d/%d do not match", errDamaged, tailCycle, tail, cycle, head)
	}
	if dist > xlogWindow/512 {
		return fmt.Errorf("%w: %d log blocks to replay (the file system is in use, not frozen)", errDamaged, dist)
	}
	pos, cyc, regions := tail, tailCycle, 0
	for walked := int64(0); walked < dist; {
		rec, err := l.readRecord(pos, cyc)
		if err != nil {
			return err
		}
		if err := onlySuper(rec, &regions); err != nil {
			return fmt.Errorf("log record at block %d: %w", pos, err)
		}
		step := rec.hbs + rec.dataBBs
		walked += step
		if pos += step; pos >= l.bbs {
			pos, cyc = pos-l.bbs, cyc+1
		}
	}
	if pos%l.bbs != head%l.bbs || regions != 0 {
		return fmt.Errorf("%w: log records do not end at the head", errDamaged)
	}
	return nil
}

// onlySuper checks a record's operations: starts, commits, transaction
// headers, unmount records and buffer items of the superblock (disk
// address 0) with their regions; anything else means recovery would
// change other metadata. regions carries an item's pending region
// operations across records.
func onlySuper(rec *logRec, regions *int) error {
	be, le := binary.BigEndian, binary.LittleEndian
	p := rec.data
	for i := 0; i < rec.ops; i++ {
		if len(p) < 12 || uint64(be.Uint32(p[4:])) > uint64(len(p)-12) {
			return fmt.Errorf("%w: operation %d outside the record", errDamaged, i)
		}
		n, client, flags := int(be.Uint32(p[4:])), p[8], p[9]
		payload := p[12 : 12+n]
		p = p[12+n:]
		switch {
		case flags&(xlogContinueTrans|xlogWasContTrans) != 0:
			return fmt.Errorf("%w: an operation split over records", errDamaged)
		case *regions > 0:
			*regions--
		case client == xlogClientXFS && flags&xlogUnmountTrans != 0:
		case client != xlogClientTrans:
			return fmt.Errorf("%w: operation of client %#x", errDamaged, client)
		case n == 0: // start, commit
		case n >= 4 && le.Uint32(payload) == xfsTransHeaderMagic:
		case n >= 16 && le.Uint16(payload) == xfsLIBuf && le.Uint64(payload[8:]) == 0 && le.Uint16(payload[2:]) >= 1:
			*regions = int(le.Uint16(payload[2:])) - 1
		default:
			return fmt.Errorf("%w: the log holds changes to metadata other than the superblock (file system in use, not frozen)", errDamaged)
		}
	}
	return nil
}
