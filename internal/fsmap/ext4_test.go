package fsmap

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// extImage makes an ext file system of sizeMiB with mkfs args, filled
// with random files of which those in del are deleted again.
func extImage(t testing.TB, sizeMiB int64, mkfs string, del ...string) string {
	t.Helper()
	need(t, "mkfs.ext4", "debugfs", "dumpe2fs")
	img := emptyImage(t, sizeMiB<<20)
	dir := randomTree(t, 3<<20, 5<<20, 100<<10, 7<<20, 1, 2<<20)
	args := append(strings.Fields(mkfs), "-q", "-F", "-d", dir, img)
	sh(t, args[0], args[1:]...)
	for _, f := range del {
		sh(t, "debugfs", "-w", "-R", "rm "+f, img)
	}
	return img
}

func TestExt4FreeMatchesDumpe2fs(t *testing.T) {
	tests := []struct {
		name, mkfs string
		sizeMiB    int64
	}{
		{"ext4 1k blocks", "mkfs.ext4", 64},
		{"ext4 4k blocks", "mkfs.ext4 -b 4096", 96},
		{"ext4 4k many groups", "mkfs.ext4 -b 4096 -g 8192", 96},
		{"ext4 32-bit no flex_bg", "mkfs.ext4 -O ^64bit,^flex_bg", 64},
		{"ext4 no checksums", "mkfs.ext4 -O ^metadata_csum,^uninit_bg", 64},
		{"ext4 uninit_bg", "mkfs.ext4 -O ^metadata_csum,uninit_bg", 64},
		{"ext4 sparse_super2", "mkfs.ext4 -b 4096 -g 4096 -O sparse_super2", 96},
		{"ext4 no sparse_super", "mkfs.ext4 -O ^sparse_super,^resize_inode", 64},
		{"ext3", "mkfs.ext3", 64},
		{"ext2", "mkfs.ext2", 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := extImage(t, tt.sizeMiB, tt.mkfs, "f1", "f3")
			f, size := openImage(t, img)
			got, err := ext4Free(context.Background(), f, size)
			if err != nil {
				t.Fatal(err)
			}
			want := dumpe2fsFree(t, img, 0)
			got = normalize(got, size)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("free ranges differ from dumpe2fs: got %d ranges (%d bytes), want %d (%d bytes)\ngot  %v\nwant %v",
					len(got), sum(got), len(want), sum(want), head(got), head(want))
			}
			if sum(got) < 12<<20 {
				t.Fatalf("only %d bytes free after deleting 12 MiB", sum(got))
			}
		})
	}
}

func head(rs []Range) string {
	if len(rs) > 8 {
		return fmt.Sprint(rs[:8], " …")
	}
	return fmt.Sprint(rs)
}

// TestExt4Refuses: a file system that is in use, damaged or uses a layout
// this package does not read excludes nothing.
func TestExt4Refuses(t *testing.T) {
	tests := []struct {
		name, mkfs, debugfs, want string
	}{
		{"journal needs recovery", "mkfs.ext4", "feature needs_recovery", "journal needs recovery"},
		{"not clean", "mkfs.ext4", "ssv state 0", "not cleanly unmounted"},
		{"errors", "mkfs.ext4", "ssv state 3", "not cleanly unmounted"},
		{"bigalloc", "mkfs.ext4 -b 4096 -O bigalloc -C 16384", "", "bigalloc"},
		{"meta_bg", "mkfs.ext4 -O meta_bg,^resize_inode", "", "unsupported incompatible"},
		{"free count lies", "mkfs.ext4", "set_bg 1 free_blocks_count 17", "group 1 bitmap has"},
		{"bitmap outside", "mkfs.ext4", "set_bg 2 block_bitmap 999999999", "descriptor out of range"},
		{"blocks beyond volume", "mkfs.ext4", "ssv blocks_count 99999999", "do not fit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := extImage(t, 64, tt.mkfs)
			if tt.debugfs != "" {
				sh(t, "debugfs", "-w", "-R", tt.debugfs, img)
			}
			f, size := openImage(t, img)
			got, err := ext4Free(context.Background(), f, size)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %d ranges, error %v; want an error containing %q", len(got), err, tt.want)
			}
		})
	}
}

// TestExt4TooFragmented: bitmaps of alternating bits (with descriptors
// that agree) would make millions of runs; the volume is kept whole
// rather than the backup allocating without bound.
func TestExt4TooFragmented(t *testing.T) {
	need(t, "mkfs.ext4")
	img := emptyImage(t, 8<<30)
	sh(t, "mkfs.ext4", "-q", "-F", "-b", "1024", "-O", "^resize_inode", img)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := readExtSuper(f, 8<<30)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := fs.readGroups()
	if err != nil {
		t.Fatal(err)
	}
	bitmap := bytes.Repeat([]byte{0x55}, int(fs.bs))
	gdt := make([]byte, fs.groups*uint64(fs.descSize))
	if _, err := f.ReadAt(gdt, int64(fs.firstData+1)*fs.bs); err != nil {
		t.Fatal(err)
	}
	for g, e := range gs {
		if _, err := f.WriteAt(bitmap, int64(e.bitmap)*fs.bs); err != nil {
			t.Fatal(err)
		}
		_, n := fs.groupSpan(uint64(g))
		d := gdt[int64(g)*fs.descSize:]
		binary.LittleEndian.PutUint16(d[0xC:], uint16(n/2))
		binary.LittleEndian.PutUint16(d[0x12:], binary.LittleEndian.Uint16(d[0x12:])&^extBlockUninit)
		if fs.descSize >= 64 {
			binary.LittleEndian.PutUint16(d[0x2C:], 0)
		}
	}
	if _, err := f.WriteAt(gdt, int64(fs.firstData+1)*fs.bs); err != nil {
		t.Fatal(err)
	}
	_, err = ext4Free(context.Background(), f, 8<<30)
	if err == nil || !strings.Contains(err.Error(), "pieces") {
		t.Fatalf("error %v, want a refusal of more than %d pieces", err, maxRuns)
	}
}
