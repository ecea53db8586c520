package restorefs

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// ReadAt reads the disk: written blocks from redo.img, the others from
// the base. At the end of the disk it returns io.EOF like io.ReaderAt.
func (ov *Overlay) ReadAt(p []byte, off int64) (int, error) {
	if err := ov.begin(); err != nil {
		return 0, err
	}
	defer ov.end()
	if off < 0 {
		return 0, fmt.Errorf("overlay: read at negative offset %d", off)
	}
	if off >= ov.size {
		return 0, io.EOF
	}
	var eof error
	if rest := ov.size - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	end := off + int64(len(p))
	for pos := off; pos < end; {
		// One run of blocks in the same state, one read.
		b := uint64(pos / ov.bs)
		written := ov.isSet(b)
		runEnd := min(int64(b+1)*ov.bs, end)
		for runEnd < end && ov.isSet(uint64(runEnd/ov.bs)) == written {
			runEnd = min(runEnd+ov.bs, end)
		}
		dst := p[pos-off : runEnd-off]
		src, name := ov.base, "base"
		if written {
			src, name = ov.redo, RedoFile
		}
		if err := readFull(src, dst, pos); err != nil {
			return 0, fmt.Errorf("overlay: read %s at %d: %w", name, pos, err)
		}
		pos = runEnd
	}
	return len(p), eof
}

// readFull reads exactly len(p) bytes at off.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// WriteAt writes p at off into the redo file. Parts of blocks not written
// before are filled from the base first. A write reaching past the end of
// the disk fails (ErrBeyondEnd) and writes nothing.
func (ov *Overlay) WriteAt(p []byte, off int64) (int, error) {
	if err := ov.begin(); err != nil {
		return 0, err
	}
	defer ov.end()
	if err := ov.checkRange(off, int64(len(p))); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	err := ov.modify(off, int64(len(p)), func(dst []byte, at int64) {
		copy(dst, p[at-off:])
	}, func(lo, hi int64) error {
		_, err := ov.redo.WriteAt(p[lo-off:hi-off], lo)
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteZeroes writes zeros to [off, off+length); whole blocks become holes
// in redo.img where the file system can punch them.
func (ov *Overlay) WriteZeroes(off, length int64) error {
	if err := ov.begin(); err != nil {
		return err
	}
	defer ov.end()
	if err := ov.checkRange(off, length); err != nil {
		return err
	}
	if length == 0 {
		return nil
	}
	return ov.modify(off, length, func(dst []byte, _ int64) {
		clear(dst)
	}, ov.zeroRedo)
}

func (ov *Overlay) checkRange(off, length int64) error {
	if off < 0 || length < 0 || off > ov.size || length > ov.size-off {
		return fmt.Errorf("overlay: write of %d bytes at %d on a disk of %d: %w", length, off, ov.size, ErrBeyondEnd)
	}
	return nil
}

// zeroRedo zeroes [lo, hi) of redo.img, by punching a hole if it can.
func (ov *Overlay) zeroRedo(lo, hi int64) error {
	err := unix.Fallocate(int(ov.redo.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, lo, hi-lo)
	if err == nil {
		return nil
	}
	bp := ov.bufs.Get().(*[]byte)
	defer ov.bufs.Put(bp)
	zero := *bp
	clear(zero)
	for pos := lo; pos < hi; {
		n := min(hi-pos, int64(len(zero)))
		if _, err := ov.redo.WriteAt(zero[:n], pos); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// modify changes [off, off+length) of the disk under the locks of the
// blocks it touches. Blocks already in redo.img, and whole blocks, are
// changed in place by direct(lo, hi); a block only partly covered and not
// yet in redo.img is read from the base into a buffer, fill(part, at)
// overwrites the covered part (at is its disk offset), and the whole block
// is written. Each block's bit is set after its data is in redo.img.
func (ov *Overlay) modify(off, length int64, fill func(dst []byte, at int64), direct func(lo, hi int64) error) error {
	end := off + length
	first, last := uint64(off/ov.bs), uint64((end-1)/ov.bs)
	unlock := ov.lockBlocks(first, last)
	defer unlock()
	for b := first; b <= last; {
		blo := int64(b) * ov.bs
		bhi := min(blo+ov.bs, ov.size)
		lo, hi := max(off, blo), min(end, bhi)
		if lo == blo && hi == bhi || ov.isSet(b) {
			// Extend over following whole or written blocks: one call.
			nb := b + 1
			for nb <= last {
				nlo := int64(nb) * ov.bs
				nhi := min(nlo+ov.bs, ov.size)
				if !(nhi <= end || ov.isSet(nb)) {
					break
				}
				hi = min(end, nhi)
				nb++
			}
			if err := direct(lo, hi); err != nil {
				return fmt.Errorf("overlay: write %s at %d: %w", RedoFile, lo, err)
			}
			for ; b < nb; b++ {
				ov.set(b)
			}
			continue
		}
		bp := ov.bufs.Get().(*[]byte)
		buf := (*bp)[:bhi-blo]
		err := readFull(ov.base, buf, blo)
		if err != nil {
			ov.bufs.Put(bp)
			return fmt.Errorf("overlay: read base at %d: %w", blo, err)
		}
		fill(buf[lo-blo:hi-blo], lo)
		_, err = ov.redo.WriteAt(buf, blo)
		ov.bufs.Put(bp)
		if err != nil {
			return fmt.Errorf("overlay: write %s at %d: %w", RedoFile, blo, err)
		}
		ov.set(b)
		b++
	}
	return nil
}

// lockBlocks locks the stripes of blocks [first, last] in index order
// (so that writers never deadlock) and returns the unlock.
func (ov *Overlay) lockBlocks(first, last uint64) func() {
	var mask uint64
	if last-first >= 63 {
		mask = ^uint64(0)
	} else {
		for b := first; b <= last; b++ {
			mask |= 1 << (b % 64)
		}
	}
	for i := range ov.locks {
		if mask&(1<<i) != 0 {
			ov.locks[i].Lock()
		}
	}
	return func() {
		for i := range ov.locks {
			if mask&(1<<i) != 0 {
				ov.locks[i].Unlock()
			}
		}
	}
}
