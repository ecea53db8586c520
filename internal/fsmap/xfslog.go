package fsmap

import (
	"encoding/binary"
	"fmt"
)

// xfs log constants (xfs_log_format.h).
const (
	xlogMagic        = 0xFEEDBABE
	xlogUnmountTrans = 0x20
	xlogClientXFS    = 0xAA
	xlogHeaderCycle  = 32768 // bytes of data one header block describes
	// xlogWindow bounds how far from the head the check looks: more than
	// the 8 in-core logs of at most 256 KiB that can be in flight.
	xlogWindow = 4 << 20
)

// logClean checks that the internal log's last record is an unmount
// record: the file system was unmounted or frozen and its metadata on
// disk is complete. Any doubt is an error.
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
	return l.unmountBefore(head, cycle)
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

// unmountBefore checks that the record ending at head is a lone unmount
// record of the given cycle.
func (l *xlog) unmountBefore(head int64, cycle uint32) error {
	be := binary.BigEndian
	for i := head - 1; i >= 0 && i >= head-xlogWindow/512; i-- {
		b, err := l.bb(i)
		if err != nil {
			return err
		}
		if be.Uint32(b) != xlogMagic {
			if be.Uint32(b) != cycle {
				return fmt.Errorf("%w: log block %d of cycle %d before the head", errDamaged, i, be.Uint32(b))
			}
			continue
		}
		if be.Uint32(b[4:]) != cycle || be.Uint64(b[16:]) != uint64(cycle)<<32|uint64(i) {
			return fmt.Errorf("%w: log record at %d does not match its position", errDamaged, i)
		}
		hbs := int64(1)
		if size := int64(be.Uint32(b[320:])); be.Uint32(b[8:])&2 != 0 && size > xlogHeaderCycle {
			hbs = (size + xlogHeaderCycle - 1) / xlogHeaderCycle
		}
		data := (int64(be.Uint32(b[12:])) + 511) / 512
		if i+hbs+data != head || be.Uint32(b[40:]) != 1 || data < 1 {
			return fmt.Errorf("%w: the last log record (block %d, %d operations) is not an unmount record", errDamaged, i, be.Uint32(b[40:]))
		}
		op, err := l.bb(i + hbs)
		if err != nil {
			return err
		}
		if op[8] != xlogClientXFS || op[9]&xlogUnmountTrans == 0 {
			return fmt.Errorf("%w: the log is dirty (last record is not an unmount record)", errDamaged)
		}
		return nil
	}
	return fmt.Errorf("%w: no log record before the head", errDamaged)
}
