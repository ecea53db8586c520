package restorefs

import (
	"bytes"
	"testing"
)

func TestBitmapRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		bs   int
		size int64
	}{{4096, 0}, {4096, 1}, {4096, 8 * 4096}, {65536, 9*65536 + 1}, {1 << 20, 1 << 40}} {
		bm := make([]byte, bitmapLen(tt.size, tt.bs))
		if len(bm) > 0 {
			bm[0] = 1
		}
		b := marshalBitmap(tt.bs, tt.size, bm)
		bs, size, got, err := parseBitmap(b)
		if err != nil || bs != tt.bs || size != tt.size || !bytes.Equal(got, bm) {
			t.Errorf("%d/%d: %v", tt.bs, tt.size, err)
		}
	}
	// A bit past the last block is refused.
	b := marshalBitmap(4096, 3*4096, []byte{0x08})
	if _, _, _, err := parseBitmap(b); err == nil {
		t.Error("bit past the last block accepted")
	}
}

func FuzzBitmapFile(f *testing.F) {
	f.Add(marshalBitmap(4096, 0, nil))
	f.Add(marshalBitmap(4096, 10*4096+1, []byte{0xff, 0x03}))
	f.Add(marshalBitmap(65536, 1<<30, make([]byte, 2048)))
	f.Add([]byte("HFREDOBM"))
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, size, bm, err := parseBitmap(b)
		if err != nil {
			return
		}
		if validBlockSize(bs) != nil || size < 0 || uint64(len(bm)) != bitmapLen(size, bs) {
			t.Fatalf("accepted a bad geometry: %d %d %d", bs, size, len(bm))
		}
		if again := marshalBitmap(bs, size, bm); !bytes.Equal(again, b) {
			t.Fatal("an accepted file does not re-encode to itself")
		}
	})
}
