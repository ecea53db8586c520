// Package memdisk is an in-memory source.Disk for tests: its content, its
// allocated extents, a count of the bytes read and an injectable read
// error, plus the standard generated disks the pipeline, mover and restore
// tests share.
package memdisk

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// ErrInjected is the error of a read at the offset given to FailAt.
var ErrInjected = errors.New("injected read error")

// Disk is an in-memory disk. Alloc lists the allocated extents (nil: all of
// it); Read counts the bytes read.
type Disk struct {
	Data  []byte
	Alloc []source.Extent
	Read  atomic.Int64
	fail  atomic.Int64
}

var _ source.Disk = (*Disk)(nil)

// New returns a fully allocated disk holding data.
func New(data []byte) *Disk {
	d := &Disk{Data: data}
	d.fail.Store(-1)
	return d
}

// FailAt makes ReadAt at exactly off fail with ErrInjected; -1: never.
func (d *Disk) FailAt(off int64) { d.fail.Store(off) }

// ReadAt copies from Data.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if f := d.fail.Load(); f >= 0 && off == f {
		return 0, ErrInjected
	}
	d.Read.Add(int64(len(p)))
	return copy(p, d.Data[off:]), nil
}

// Close does nothing.
func (d *Disk) Close() error { return nil }

// Size is the length of Data.
func (d *Disk) Size() int64 { return int64(len(d.Data)) }

// Allocated returns Alloc, or the whole disk when Alloc is nil.
func (d *Disk) Allocated(context.Context) ([]source.Extent, error) {
	if d.Alloc == nil {
		return source.FullExtent(d.Size()), nil
	}
	return d.Alloc, nil
}

// Describe reports a raw in-memory disk.
func (d *Disk) Describe() source.Info { return source.Info{Format: "raw", Location: "mem"} }

// Standard returns 40 chunks of cs bytes plus a 1000-byte tail: chunks
// 0-9 random, 10-19 zero but allocated, 20-29 unallocated, 30-39 the same
// compressible text, the tail random.
func Standard(cs int) *Disk {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 40*cs+1000)
	for i := 0; i < 10*cs; i++ {
		data[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte("holdfast! "), cs/10+1)[:cs]
	for c := 30; c < 40; c++ {
		copy(data[c*cs:], text)
	}
	for i := 40 * cs; i < len(data); i++ {
		data[i] = byte(rng.Uint32())
	}
	d := New(data)
	d.Alloc = []source.Extent{{Offset: 0, Length: 20 * int64(cs)}, {Offset: 30 * int64(cs), Length: 10*int64(cs) + 1000}}
	return d
}

// Random returns a fully allocated disk of n incompressible bytes.
func Random(n int, seed uint64) *Disk {
	rng := rand.New(rand.NewPCG(seed, 7))
	data := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8; k++ {
			data[i+k] = byte(v >> (8 * k))
		}
	}
	return New(data)
}
