package fsmap

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// xfsImage makes an xfs file system of sizeMiB (mkfs options opts) holding
// random files from a protofile, so no mount is needed.
func xfsImage(t testing.TB, sizeMiB int64, opts string) string {
	t.Helper()
	need(t, "mkfs.xfs", "xfs_db")
	img := emptyImage(t, sizeMiB<<20)
	dir := randomTree(t, 3<<20, 5<<20, 100<<10, 7<<20, 1, 2<<20)
	var proto strings.Builder
	proto.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fmt.Fprintf(&proto, "%s ---644 0 0 %s\n", e.Name(), filepath.Join(dir, e.Name()))
	}
	proto.WriteString("$\n")
	pf := filepath.Join(t.TempDir(), "proto")
	if err := os.WriteFile(pf, []byte(proto.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(strings.Fields(opts), "-q", "-f", "-p", pf, img)
	sh(t, "mkfs.xfs", args...)
	return img
}

// mountedChange mounts img (root only), runs fn in the mount point, and
// unmounts it: fn may leave the log dirty by shutting the file system down.
func mountedChange(t *testing.T, img string, fn func(dir string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a loop device")
	}
	need(t, "mount", "umount")
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a loop device here: %v %s", err, out)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_ = exec.Command("umount", mnt).Run()
		}
	})
	fn(mnt)
	sh(t, "umount", mnt)
	mounted = false
}

var agflEntry = regexp.MustCompile(`\d+:(\d+)`)

// xfsdbFree returns the free extents `xfs_db freesp -d` lists, less the
// blocks on each AG's free list (which belong to the btrees), in bytes.
func xfsdbFree(t testing.TB, img string) []Range {
	t.Helper()
	geo := sh(t, "xfs_db", "-r", "-c", "sb 0", "-c", "p blocksize agblocks agcount", img)
	var bs, agblocks, agcount int64
	for _, l := range strings.Split(geo, "\n") {
		k, v, _ := strings.Cut(l, " = ")
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch strings.TrimSpace(k) {
		case "blocksize":
			bs = n
		case "agblocks":
			agblocks = n
		case "agcount":
			agcount = n
		}
	}
	agfl := map[[2]int64]bool{}
	for ag := int64(0); ag < agcount; ag++ {
		out := sh(t, "xfs_db", "-r", "-c", fmt.Sprintf("agfl %d", ag), "-c", "p bno", img)
		for _, m := range agflEntry.FindAllStringSubmatch(out, -1) {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			agfl[[2]int64{ag, n}] = true
		}
	}
	var rs []Range
	for _, l := range strings.Split(sh(t, "xfs_db", "-r", "-c", "freesp -d", img), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] == "agno" {
			continue
		}
		ag, _ := strconv.ParseInt(f[0], 10, 64)
		bno, _ := strconv.ParseInt(f[1], 10, 64)
		n, _ := strconv.ParseInt(f[2], 10, 64)
		if n == 1 && agfl[[2]int64{ag, bno}] {
			continue
		}
		rs = append(rs, Range{Offset: (ag*agblocks + bno) * bs, Length: n * bs, Reason: ReasonFree})
	}
	return normalize(rs, 1<<62)
}

func TestXFSFreeMatchesXFSDB(t *testing.T) {
	deleteSome := func(dir string) {
		for _, f := range []string{"f1", "f3"} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 200 { // many small files: a multi-level bnobt
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("s", i)), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 200; i += 2 {
			_ = os.Remove(filepath.Join(dir, fmt.Sprint("s", i)))
		}
	}
	tests := []struct {
		name, opts string
		change     func(string)
	}{
		{"v5 fresh", "", nil},
		{"v4 fresh", "-m crc=0", nil},
		{"v5 1k blocks", "-b size=1024", nil},
		{"v5 4k sectors", "-s size=4096", nil},
		{"v5 files deleted", "", deleteSome},
		{"v4 files deleted", "-m crc=0", deleteSome},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := xfsImage(t, 320, tt.opts)
			if tt.change != nil {
				mountedChange(t, img, tt.change)
			}
			f, size := openImage(t, img)
			got, err := xfsFree(context.Background(), f, size)
			if err != nil {
				t.Fatal(err)
			}
			got = normalize(got, size)
			want := xfsdbFree(t, img)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("free ranges differ from xfs_db: got %d ranges (%d bytes), want %d (%d bytes)\ngot  %v\nwant %v",
					len(got), sum(got), len(want), sum(want), head(got), head(want))
			}
		})
	}
}

// TestXFSRefuses: a dirty log or damaged metadata excludes nothing.
func TestXFSRefuses(t *testing.T) {
	tests := []struct {
		name string
		prep func(t *testing.T, img string)
		want string
	}{
		{"dirty log", func(t *testing.T, img string) {
			mountedChange(t, img, func(dir string) {
				if err := os.WriteFile(filepath.Join(dir, "new"), []byte("data"), 0o644); err != nil {
					t.Fatal(err)
				}
				sh(t, "xfs_io", "-x", "-c", "shutdown -f", dir)
			})
		}, "log"},
		{"AGF free count", func(t *testing.T, img string) {
			sh(t, "xfs_db", "-x", "-c", "agf 1", "-c", "write -d freeblks 12", img)
		}, "AGF says"},
		{"bnobt root outside", func(t *testing.T, img string) {
			sh(t, "xfs_db", "-x", "-c", "agf 2", "-c", "write -d bnoroot 4000000", img)
		}, "bnobt root"},
		{"bnobt block checksum", func(t *testing.T, img string) {
			sh(t, "xfs_db", "-x", "-c", "agf 0", "-c", "addr bnoroot", "-c", "write -c recs[1].blockcount 3", img)
		}, "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := xfsImage(t, 320, "")
			tt.prep(t, img)
			f, size := openImage(t, img)
			got, err := xfsFree(context.Background(), f, size)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %d ranges, error %v; want an error containing %q", len(got), err, tt.want)
			}
		})
	}
}
