package guestdisk

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// image makes a disk image of sizeMiB with the sfdisk script (none when
// empty) and runs each mkfs command line on it (an %s is the image path).
func image(t *testing.T, sizeMiB int64, script string, mkfs ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.Truncate(img, 0); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sizeMiB << 20); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if script != "" {
		run(t, strings.NewReader(script), "sfdisk", "-q", img)
	}
	for _, line := range mkfs {
		args := strings.Fields(strings.ReplaceAll(line, "%s", img))
		run(t, nil, args[0], args[1:]...)
	}
	return img
}

func run(t *testing.T, stdin *strings.Reader, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (scripts/setup installs it): %v", name, err)
	}
	c := exec.Command(name, args...)
	if stdin != nil {
		c.Stdin = stdin
	}
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func volumesOf(t *testing.T, img string) ([]Volume, error) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Volumes(f, st.Size())
}

func TestVolumes(t *testing.T) {
	const gptScript = "label: gpt\nstart=2048, size=20480, type=linux\nstart=22528, size=8192, type=swap\n"
	const mbrScript = "label: dos\nstart=2048, size=20480, type=83\nstart=30720, size=8192, type=82\n"
	tests := []struct {
		name   string
		script string
		mkfs   []string
		want   []Volume
	}{
		{"no table", "", []string{"mkfs.ext4 -q -F %s"},
			[]Volume{{Partition: 0, Start: 0, Size: 32 << 20, Content: ContentExt}}},
		{"gpt", gptScript, []string{"mkfs.ext4 -q -F -E offset=1048576 %s 10M"},
			[]Volume{{Partition: 1, Start: 1 << 20, Size: 10 << 20, Table: "gpt", Content: ContentExt},
				{Partition: 2, Start: 22528 * 512, Size: 4 << 20, Table: "gpt"}}},
		{"mbr", mbrScript, nil,
			[]Volume{{Partition: 1, Start: 1 << 20, Size: 10 << 20, Table: "mbr", Type: "0x83"},
				{Partition: 2, Start: 30720 * 512, Size: 4 << 20, Table: "mbr", Type: "0x82"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := volumesOf(t, image(t, 32, tt.script, tt.mkfs...))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d volumes %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Partition != w.Partition || g.Start != w.Start || g.Size != w.Size || g.Table != w.Table || g.Content != w.Content {
					t.Errorf("volume %d = %+v, want %+v", i, g, w)
				}
				if w.Type != "" && g.Type != w.Type {
					t.Errorf("volume %d type %q, want %q", i, g.Type, w.Type)
				}
			}
		})
	}
}

func TestProbeContents(t *testing.T) {
	tests := []struct {
		name, mkfs, want string
	}{
		{"ext4", "mkfs.ext4 -q -F %s", ContentExt},
		{"xfs", "mkfs.xfs -q -f %s", ContentXFS},
		{"btrfs", "mkfs.btrfs -q -f %s", ContentBtrfs},
		{"swap", "mkswap -q %s", ContentSwap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := volumesOf(t, image(t, 320, "", tt.mkfs))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Content != tt.want {
				t.Fatalf("volumes %+v, want one holding %s", got, tt.want)
			}
		})
	}
}

// TestVolumesDamaged: hostile or damaged tables are errors wrapping
// ErrPartitionTable, never a panic or a huge allocation.
func TestVolumesDamaged(t *testing.T) {
	gptImage := func(t *testing.T) string {
		return image(t, 32, "label: gpt\nstart=2048, size=20480, type=linux\n")
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, img string)
	}{
		{"both GPT headers damaged", func(t *testing.T, img string) {
			poke(t, img, 512+16, []byte{1, 2, 3, 4})          // primary header CRC
			poke(t, img, (32<<20)-512+16, []byte{1, 2, 3, 4}) // backup header CRC
		}},
		{"GPT asks for a huge entry array", func(t *testing.T, img string) {
			hdr := read(t, img, 512, 92)
			binary.LittleEndian.PutUint32(hdr[80:], 1<<30)
			binary.LittleEndian.PutUint32(hdr[16:], 0)
			binary.LittleEndian.PutUint32(hdr[16:], crc32.ChecksumIEEE(hdr))
			poke(t, img, 512, hdr)
		}},
		{"MBR partition past the disk's end", func(t *testing.T, img string) {
			e := make([]byte, 16)
			e[4] = 0x83
			binary.LittleEndian.PutUint32(e[8:], 2048)
			binary.LittleEndian.PutUint32(e[12:], 1<<30)
			poke(t, img, 0, make([]byte, 1024)) // no GPT header: the MBR alone
			poke(t, img, 510, []byte{0x55, 0xAA})
			poke(t, img, 446, e)
			poke(t, img, 446+16, make([]byte, 48))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := gptImage(t)
			tt.damage(t, img)
			vs, err := volumesOf(t, img)
			if !errors.Is(err, ErrPartitionTable) {
				t.Fatalf("Volumes = %+v, %v; want ErrPartitionTable", vs, err)
			}
		})
	}
}

func poke(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, img string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDMName(t *testing.T) {
	for _, c := range [][3]string{{"a-b", "c-d", "a--b-c--d"}, {"cl", "root", "cl-root"}, {"vg", "--", "vg-----"}} {
		if got := DMName(c[0], c[1]); got != c[2] {
			t.Errorf("DMName(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}
