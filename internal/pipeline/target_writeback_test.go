package pipeline

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWritebackKicks: the raw target's writer starts write-back of each
// writebackSpan it wrote (holes between writes included), stops hinting
// after a failed hint, and writes every byte either way.
func TestWritebackKicks(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name   string
		fail   bool
		writes []int64 // offsets of 1 MiB writes, in order
		want   [][2]int64
	}{
		{"sequential", false, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17},
			[][2]int64{{0, 16 * mib}}},
		{"with holes", false, []int64{0, 10, 20, 40, 48, 55},
			[][2]int64{{0, 21 * mib}, {40 * mib, 56 * mib}}},
		{"failed hint", true, []int64{0, 20, 40, 60}, [][2]int64{{0, 21 * mib}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w := newWriteback(f)
			var got [][2]int64
			w.kick = func(off, n int64) error {
				got = append(got, [2]int64{off, off + n})
				if tt.fail {
					return errors.New("not supported")
				}
				return nil
			}
			p := bytes.Repeat([]byte{7}, mib)
			for _, c := range tt.writes {
				if n, err := w.WriteAt(p, c*mib); n != mib || err != nil {
					t.Fatalf("write at %d MiB: %d, %v", c, n, err)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("write-back of %v, want %v", got, tt.want)
			}
			b, _ := os.ReadFile(f.Name())
			for _, c := range tt.writes {
				if !bytes.Equal(b[c*mib:(c+1)*mib], p) {
					t.Errorf("MiB %d not written", c)
				}
			}
		})
	}
}
