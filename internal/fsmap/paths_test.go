package fsmap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/guestdisk"
)

// pathTree writes the tree the path tests exclude from: /cache with two
// files, a hard-linked file (/cache/linked = /linked2), a kept file and a
// swap file. Sizes are whole 4 KiB blocks.
func pathTree(t *testing.T) string {
	t.Helper()
	need(t, "mkswap")
	dir := randomTree(t, 1<<20)
	if err := os.Rename(filepath.Join(dir, "f0"), filepath.Join(dir, "keep")); err != nil {
		t.Fatal(err)
	}
	src := randomTree(t, 1<<20, 2<<20, 1<<20)
	if err := os.MkdirAll(filepath.Join(dir, "cache", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{"f0": "cache/a", "f1": "cache/sub/b", "f2": "cache/linked"} {
		if err := os.Rename(filepath.Join(src, from), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "cache/linked"), filepath.Join(dir, "linked2")); err != nil {
		t.Fatal(err)
	}
	swap := filepath.Join(dir, "swapfile")
	if err := os.WriteFile(swap, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	sh(t, "mkswap", swap)
	f, err := os.OpenFile(swap, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(randomBytes(t, 4<<20-4096), 4096); err != nil { // swapped-out pages
		t.Fatal(err)
	}
	return dir
}

// debugfsBlocks is where ext file p's blocks are, in bytes, from block
// skip on.
func debugfsBlocks(t *testing.T, img, p string, bs int64, skip int, reason string) []Range {
	var rs []Range
	for i, f := range strings.Fields(sh(t, "debugfs", "-R", "blocks "+p, img)) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("debugfs blocks %s: %q", p, f)
		}
		if i >= skip {
			rs = append(rs, Range{Offset: n * bs, Length: bs, Reason: reason})
		}
	}
	return rs
}

var bmapLine = regexp.MustCompile(`data offset (\d+) startblock \d+ \((\d+)/(\d+)\) count (\d+)`)

// xfsdbBlocks is where xfs file p's blocks are, in bytes, from file
// block skip on.
func xfsdbBlocks(t *testing.T, img, p string, bs, agblocks int64, skip int64, reason string) []Range {
	var rs []Range
	for _, m := range bmapLine.FindAllStringSubmatch(sh(t, "xfs_db", "-r", "-c", "path "+p, "-c", "bmap", img), -1) {
		var v [4]int64
		for i := range v {
			v[i], _ = strconv.ParseInt(m[i+1], 10, 64)
		}
		off, ag, agbno, count := v[0], v[1], v[2], v[3]
		if cut := skip - off; cut > 0 {
			if cut >= count {
				continue
			}
			agbno, count = agbno+cut, count-cut
		}
		rs = append(rs, Range{Offset: (ag*agblocks + agbno) * bs, Length: count * bs, Reason: reason})
	}
	return rs
}

// TestPathsMatchTools: --exclude /cache leaves out the data blocks of the
// files under /cache with one link (not the hard-linked one), and
// --exclude-swap the swap file after its first page, as debugfs and
// xfs_db place them.
func TestPathsMatchTools(t *testing.T) {
	dir := pathTree(t)
	t.Run("ext4", func(t *testing.T) {
		need(t, "mkfs.ext4", "debugfs")
		img := emptyImage(t, 64<<20)
		sh(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-d", dir, img)
		f, size := openImage(t, img)
		v := guestdisk.Volume{Size: size, Content: guestdisk.ContentExt}
		got, err := fileRanges(context.Background(), f, v, Options{Paths: []string{"/cache"}, Swap: true})
		if err != nil {
			t.Fatal(err)
		}
		var want []Range
		want = append(want, debugfsBlocks(t, img, "/cache/a", 4096, 0, ReasonPath)...)
		want = append(want, debugfsBlocks(t, img, "/cache/sub/b", 4096, 0, ReasonPath)...)
		want = append(want, debugfsBlocks(t, img, "/swapfile", 4096, 1, ReasonSwap)...)
		compareRanges(t, got, want, 3<<20+4<<20-4096)
	})
	t.Run("xfs", func(t *testing.T) {
		img := xfsImageFrom(t, dir)
		f, size := openImage(t, img)
		v := guestdisk.Volume{Size: size, Content: guestdisk.ContentXFS}
		got, err := fileRanges(context.Background(), f, v, Options{Paths: []string{"cache"}, Swap: true})
		if err != nil {
			t.Fatal(err)
		}
		agblocks, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(sh(t, "xfs_db", "-r", "-c", "sb 0", "-c", "p agblocks", img), "agblocks = ")), 10, 64)
		var want []Range
		want = append(want, xfsdbBlocks(t, img, "/cache/a", 4096, agblocks, 0, ReasonPath)...)
		want = append(want, xfsdbBlocks(t, img, "/cache/sub/b", 4096, agblocks, 0, ReasonPath)...)
		// A protofile makes no hard links: /cache/linked has one here.
		want = append(want, xfsdbBlocks(t, img, "/cache/linked", 4096, agblocks, 0, ReasonPath)...)
		want = append(want, xfsdbBlocks(t, img, "/swapfile", 4096, agblocks, 1, ReasonSwap)...)
		compareRanges(t, got, want, 4<<20+4<<20-4096)
	})
}

func compareRanges(t *testing.T, got, want []Range, wantBytes int64) {
	t.Helper()
	got, want = normalize(got, 1<<62), normalize(want, 1<<62)
	if !reflect.DeepEqual(got, want) || sum(got) != wantBytes {
		t.Fatalf("got %d bytes in %v\nwant %d bytes in %v", sum(got), head(got), sum(want), head(want))
	}
}

// xfsImageFrom makes a 320 MiB xfs holding dir's tree (hard links kept)
// through a protofile.
func xfsImageFrom(t *testing.T, dir string) string {
	t.Helper()
	need(t, "mkfs.xfs", "xfs_db")
	var proto strings.Builder
	proto.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	var walk func(d string, depth int)
	walk = func(d string, depth int) {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			if e.IsDir() {
				fmt.Fprintf(&proto, "%s d--755 0 0\n", e.Name())
				walk(p, depth+1)
				proto.WriteString("$\n")
				continue
			}
			fmt.Fprintf(&proto, "%s ---644 0 0 %s\n", e.Name(), p)
		}
	}
	walk(dir, 0)
	proto.WriteString("$\n")
	pf := filepath.Join(t.TempDir(), "proto")
	if err := os.WriteFile(pf, []byte(proto.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	img := emptyImage(t, 320<<20)
	sh(t, "mkfs.xfs", "-q", "-f", "-p", pf, img)
	return img
}

// TestPathsRefused: files of a file system that shares blocks between
// files (an xfs reflink copy) or is in use are all kept.
func TestPathsRefused(t *testing.T) {
	dir := pathTree(t)
	t.Run("xfs reflink", func(t *testing.T) {
		img := xfsImageFrom(t, dir)
		mountedChange(t, img, func(mnt string) {
			sh(t, "cp", "--reflink=always", filepath.Join(mnt, "keep"), filepath.Join(mnt, "cache", "copy"))
		})
		f, size := openImage(t, img)
		v := guestdisk.Volume{Size: size, Content: guestdisk.ContentXFS}
		if got, err := fileRanges(context.Background(), f, v, Options{Paths: []string{"/cache"}}); err == nil || !strings.Contains(err.Error(), "reflink") {
			t.Fatalf("got %d ranges, error %v; want a refusal naming reflinks", len(got), err)
		}
	})
	t.Run("ext4 in use", func(t *testing.T) {
		need(t, "mkfs.ext4", "debugfs")
		img := emptyImage(t, 64<<20)
		sh(t, "mkfs.ext4", "-q", "-F", "-d", dir, img)
		sh(t, "debugfs", "-w", "-R", "feature needs_recovery", img)
		f, size := openImage(t, img)
		m, err := Find(context.Background(), f, size, Options{Paths: []string{"/cache"}})
		if err != nil || len(m.Ranges) != 0 || len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "journal needs recovery") {
			t.Fatalf("ranges %v, warnings %q, error %v", m.Ranges, m.Warnings, err)
		}
		// Only swap asked for: no swap file can be looked for, no warning.
		if m, err := Find(context.Background(), f, size, Options{Swap: true}); err != nil || len(m.Ranges) != 0 || len(m.Warnings) != 0 {
			t.Fatalf("swap only: ranges %v, warnings %q, error %v", m.Ranges, m.Warnings, err)
		}
	})
}
