package nfs

import (
	"encoding/binary"
	"errors"
)

// errGarbage reports arguments that do not decode; the call is answered
// with GARBAGE_ARGS.
var errGarbage = errors.New("nfs: malformed XDR")

// decoder reads XDR (RFC 4506) from a byte slice. The first failure is
// sticky: later reads return zero values and err stays set.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = errGarbage; d.b = nil }

func (d *decoder) uint32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) uint64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) bool() bool {
	switch d.uint32() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

// fixed reads n bytes of fixed-length opaque data (padded to 4).
func (d *decoder) fixed(n int) []byte {
	p := pad(n)
	if d.err != nil || n < 0 || len(d.b) < p {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[p:]
	return v
}

// opaque reads variable-length opaque data of at most limit bytes. The
// result aliases the input.
func (d *decoder) opaque(limit int) []byte {
	n := d.uint32()
	if d.err != nil || n > uint32(limit) {
		d.fail()
		return nil
	}
	return d.fixed(int(n))
}

func (d *decoder) string(limit int) string { return string(d.opaque(limit)) }

func pad(n int) int { return (n + 3) &^ 3 }

// encoder appends XDR to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) uint32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) uint64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

func (e *encoder) bool(v bool) {
	if v {
		e.uint32(1)
	} else {
		e.uint32(0)
	}
}

func (e *encoder) fixed(p []byte) {
	e.b = append(e.b, p...)
	for range pad(len(p)) - len(p) {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) opaque(p []byte) {
	e.uint32(uint32(len(p)))
	e.fixed(p)
}

func (e *encoder) string(s string) {
	e.uint32(uint32(len(s)))
	e.b = append(e.b, s...)
	for range pad(len(s)) - len(s) {
		e.b = append(e.b, 0)
	}
}
