package nbd

import (
	"errors"
	"io/fs"
	"reflect"
	"syscall"
	"testing"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		in   string
		want URL
		err  bool
	}{
		{"nbd://example.com/disk", URL{Network: "tcp", Address: "example.com:10809", Host: "example.com", Export: "disk"}, false},
		{"nbd://127.0.0.1:1234/", URL{Network: "tcp", Address: "127.0.0.1:1234", Host: "127.0.0.1"}, false},
		{"nbd://h", URL{Network: "tcp", Address: "h:10809", Host: "h"}, false},
		{"nbds://[::1]:99/a%20b/c", URL{TLS: true, Network: "tcp", Address: "[::1]:99", Host: "::1", Export: "a b/c"}, false},
		{"nbd+unix:///exp?socket=/run/s.sock", URL{Network: "unix", Address: "/run/s.sock", Export: "exp"}, false},
		{"nbds+unix:///?socket=/s", URL{TLS: true, Network: "unix", Address: "/s"}, false},
		{"nbd+unix:///exp", URL{}, true},
		{"nbd+unix://host/exp?socket=/s", URL{}, true},
		{"nbd+unix:///e?socket=/s&x=1", URL{}, true},
		{"http://h/e", URL{}, true},
		{"nbd:///e", URL{}, true},
		{"nbd://h:0/e", URL{}, true},
		{"nbd://h:70000/e", URL{}, true},
		{"nbd://h/e?socket=/s", URL{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %+v want %+v", got, tc.want)
			}
			if err == nil {
				if back, err := ParseURL(got.String()); err != nil || back != got {
					t.Fatalf("round trip %q: %+v %v", got.String(), back, err)
				}
			}
		})
	}
}

func TestNormalizeExtents(t *testing.T) {
	cases := []struct {
		name   string
		ext    []Extent
		off, n int64
		max    int
		want   []descriptor
	}{
		{"none is data", nil, 0, 100, 10, []descriptor{{100, 0}}},
		{"gaps filled", []Extent{{10, 10, 3}, {50, 10, 1}}, 0, 100, 10,
			[]descriptor{{10, 0}, {10, 3}, {30, 0}, {10, 1}, {40, 0}}},
		{"clipped and unsorted", []Extent{{90, 50, 3}, {0, 95, 2}}, 20, 100, 10,
			[]descriptor{{75, 2}, {25, 3}}},
		{"merged", []Extent{{0, 10, 3}, {10, 10, 3}, {20, 5, 7}}, 0, 25, 10, []descriptor{{25, 3}}},
		{"overlaps ignored", []Extent{{0, 50, 3}, {10, 10, 0}, {40, 20, 1}}, 0, 60, 10,
			[]descriptor{{50, 3}, {10, 1}}},
		{"bad extents skipped", []Extent{{-5, 10, 3}, {5, 0, 3}, {5, -1, 3}}, 0, 10, 10, []descriptor{{10, 0}}},
		{"capped", []Extent{{0, 1, 1}, {1, 1, 2}, {2, 1, 1}, {3, 1, 2}}, 0, 10, 2, []descriptor{{1, 1}, {1, 2}}},
		{"beyond range", []Extent{{200, 10, 3}}, 0, 100, 10, []descriptor{{100, 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := normalizeExtents(tc.ext, tc.off, tc.n, tc.max); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v want %+v", got, tc.want)
			}
		})
	}
}

func TestSpanSet(t *testing.T) {
	var ss spanSet
	steps := []struct {
		a, b uint64
		ok   bool
	}{{10, 20, true}, {30, 40, true}, {20, 30, true}, {5, 11, false}, {0, 5, true}, {39, 41, false}, {40, 50, true}}
	for _, s := range steps {
		if got := ss.add(s.a, s.b); got != s.ok {
			t.Fatalf("add(%d,%d) = %v", s.a, s.b, got)
		}
	}
	if ss.total != 45 || !reflect.DeepEqual(ss.s, [][2]uint64{{0, 5}, {10, 50}}) {
		t.Fatalf("set %+v total %d", ss.s, ss.total)
	}
}

func TestParseChunks(t *testing.T) {
	bs := encodeBlockStatus(7, []descriptor{{4096, 3}, {512, 0}})
	id, descs, err := parseBlockStatus(bs)
	if err != nil || id != 7 || !reflect.DeepEqual(descs, []descriptor{{4096, 3}, {512, 0}}) {
		t.Fatalf("block status %d %+v %v", id, descs, err)
	}
	for _, bad := range [][]byte{nil, bs[:8], bs[:13], encodeBlockStatus(1, []descriptor{{0, 1}})} {
		if _, _, err := parseBlockStatus(bad); !errors.Is(err, ErrProtocol) {
			t.Fatalf("accepted bad block status %x", bad)
		}
	}
	ec, err := parseErrorChunk(chunkError, encodeErrorChunk(codeENOSPC, "full"))
	if err != nil || ec.code != codeENOSPC || ec.message != "full" {
		t.Fatalf("error chunk %+v %v", ec, err)
	}
	withOff := append(encodeErrorChunk(codeEIO, "x\x00y"), be64(1234)...)
	ec, err = parseErrorChunk(chunkErrorOffset, withOff)
	if err != nil || !ec.hasOffset || ec.offset != 1234 || ec.message != "x?y" {
		t.Fatalf("error offset chunk %+v %v", ec, err)
	}
	if _, err := parseErrorChunk(chunkErrorOffset, encodeErrorChunk(codeEIO, "")); err == nil {
		t.Fatal("error offset chunk without offset accepted")
	}
	if _, err := parseErrorChunk(chunkError, []byte{0, 0, 0, 5, 0, 9, 'a'}); err == nil {
		t.Fatal("message length beyond chunk accepted")
	}
}

func TestErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		code uint32
	}{
		{syscall.EPERM, codeEPERM}, {fs.ErrPermission, codeEPERM}, {syscall.EROFS, codeEPERM},
		{syscall.ENOSPC, codeENOSPC}, {syscall.EDQUOT, codeENOSPC}, {syscall.EINVAL, codeEINVAL},
		{errors.ErrUnsupported, codeENOTSUP}, {errors.New("disk on fire"), codeEIO},
		{&Error{Code: codeEOVERFLOW}, codeEOVERFLOW},
	}
	for _, tc := range cases {
		if got := errorCode(tc.err); got != tc.code {
			t.Errorf("errorCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
		e := newReplyError(cmdRead, tc.code, "")
		if tc.code != codeEIO && !errors.Is(e, syscall.Errno(tc.code)) {
			t.Errorf("reply error %d does not match errno", tc.code)
		}
	}
}
