package source

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"testing"
)

// memDisk is a disk in memory with given allocated extents.
type memDisk struct {
	b     []byte
	alloc []Extent
	reads int
}

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	m.reads++
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m *memDisk) Close() error                                { return nil }
func (m *memDisk) Size() int64                                 { return int64(len(m.b)) }
func (m *memDisk) Allocated(context.Context) ([]Extent, error) { return m.alloc, nil }
func (m *memDisk) Describe() Info                              { return Info{Format: "raw", Location: "mem"} }

func TestExcluding(t *testing.T) {
	src := &memDisk{b: bytes.Repeat([]byte{0xAB}, 100), alloc: []Extent{{0, 40}, {60, 40}}}
	d := Excluding(src, []Extent{{10, 5}, {30, 40}, {95, 5}})
	got, _ := d.Allocated(context.Background())
	if want := []Extent{{0, 10}, {15, 15}, {70, 25}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	p := make([]byte, 100)
	if n, err := d.ReadAt(p, 0); n != 100 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	for i, c := range p {
		excluded := (i >= 10 && i < 15) || (i >= 30 && i < 70) || i >= 95
		if excluded != (c == 0) {
			t.Fatalf("byte %d is %#x (excluded %v)", i, c, excluded)
		}
	}
	src.reads = 0
	p = make([]byte, 20)
	for i := range p {
		p[i] = 1
	}
	if n, err := d.ReadAt(p, 40); n != 20 || err != nil || !bytes.Equal(p, make([]byte, 20)) || src.reads != 0 {
		t.Fatalf("a read inside an excluded range: %d, %v, %x, %d reads of the disk", n, err, p, src.reads)
	}
	if n, err := d.ReadAt(make([]byte, 10), 95); n != 5 || err != io.EOF {
		t.Fatalf("a read past the end: %d, %v", n, err)
	}
}

func TestUnionSubtract(t *testing.T) {
	u := Union([]Extent{{0, 10}, {50, 10}}, []Extent{{5, 10}, {15, 5}, {70, 0}, {80, 5}})
	if want := []Extent{{0, 20}, {50, 10}, {80, 5}}; !reflect.DeepEqual(u, want) {
		t.Fatalf("union %v, want %v", u, want)
	}
	s := Subtract([]Extent{{0, 100}}, []Extent{{0, 10}, {20, 10}, {90, 20}})
	if want := []Extent{{10, 10}, {30, 60}}; !reflect.DeepEqual(s, want) {
		t.Fatalf("subtract %v, want %v", s, want)
	}
}
