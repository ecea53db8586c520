package guestfiles

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/guestfs"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// imageDisk is a disk image file as a Disk.
type imageDisk struct{ *os.File }

func (d imageDisk) Size() int64 {
	st, _ := d.Stat()
	return st.Size()
}

func openTree(t *testing.T, imgs ...string) *Tree {
	t.Helper()
	var disks []Disk
	for _, img := range imgs {
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		disks = append(disks, imageDisk{f})
	}
	tr, err := OpenTree(disks)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

const gptOne = "label: gpt\nstart=2048, size=180224, type=linux\n"

func TestRestoreKeepsEverything(t *testing.T) {
	src := guesttree.Build(t, t.TempDir(), guesttree.Options{})
	img := guesttree.Disk(t, 100, gptOne, map[int64]string{2048 * 512: guesttree.Ext4(t, src, 80)})
	tr := openTree(t, img)
	v := tr.Single()
	if v == nil || v.Name != "disk0-p1" {
		t.Fatalf("volumes %+v", tr.Volumes)
	}
	dest := t.TempDir()
	owners := os.Geteuid() == 0
	res, err := Restore(context.Background(), v.FS, []string{"/"}, dest, RestoreOptions{Owners: owners, SetID: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.HardLinks != 2 || res.Symlinks != 3 || res.Files < 300 {
		t.Errorf("result %+v", res)
	}
	if err := os.Remove(filepath.Join(dest, "lost+found")); err != nil {
		t.Fatal(err)
	}
	guesttree.Compare(t, src, dest, guesttree.CompareOptions{Owners: owners, Times: true, Links: true, Sparse: true})

	// again: every file exists, nothing is replaced without Force
	if _, err := Restore(context.Background(), v.FS, []string{"hello.txt"}, dest, RestoreOptions{}); !errors.Is(err, ErrExists) {
		t.Errorf("existing file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dest, "hello.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(context.Background(), v.FS, []string{"hello.txt"}, dest, RestoreOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "hello.txt")); string(b) != "hello, guest\n" {
		t.Errorf("forced restore left %q", b)
	}
	// one file deep in the tree: its parents are made
	one := t.TempDir()
	if _, err := Restore(context.Background(), v.FS, []string{"etc/config"}, one, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(one, "etc/config")); err != nil {
		t.Error(err)
	}
	if _, err := Restore(context.Background(), v.FS, []string{"no/such"}, one, RestoreOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing path: %v", err)
	}
}

// TestRestoreDropsSetID: without SetID a guest's setuid/setgid program is
// restored without those bits (one warning), so it gives no one the
// guest-chosen owner's rights on this host.
func TestRestoreDropsSetID(t *testing.T) {
	src := guesttree.Build(t, t.TempDir(), guesttree.Options{BigDir: 2, Deep: 2, NoSparse: true})
	tr := openTree(t, guesttree.Ext4(t, src, 16))
	dest := t.TempDir()
	var warnings []string
	res, err := Restore(context.Background(), tr.Single().FS, []string{"bin"}, dest, RestoreOptions{Owners: os.Geteuid() == 0,
		Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dest, "bin/suid"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want -rwxr-xr-x", fi.Mode())
	}
	if res.SetIDDropped != 1 || len(warnings) != 1 || !strings.Contains(warnings[0], "--keep-setid") {
		t.Errorf("result %+v, warnings %q", res, warnings)
	}
}

// patchName renames a directory entry in an ext4 image in place (same
// length), making names mkfs refuses to write.
func patchName(t *testing.T, img, from, to string) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(from) != len(to) || bytes.Count(b, []byte(from)) != 1 {
		t.Fatalf("%q occurs %d times", from, bytes.Count(b, []byte(from)))
	}
	if err := os.WriteFile(img, bytes.Replace(b, []byte(from), []byte(to), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRestoreHostileNames(t *testing.T) {
	src := t.TempDir()
	outside := t.TempDir()
	for name, data := range map[string]string{"QdotdotQ/x": "a", "QslashQ": "b", "ok": "c", "QQlinkQQ/pwn": "d"} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(src, "QQlinkQ2")); err != nil {
		t.Fatal(err)
	}
	fsImg := guesttree.Ext4(t, src, 16)
	patchName(t, fsImg, "QdotdotQ", "..\x00\x00\x00\x00\x00\x00"[:8])
	patchName(t, fsImg, "QslashQ", "a/b/../")
	patchName(t, fsImg, "QQlinkQQ", "QQlinkQ2") // a directory named as the symlink to outside
	tr := openTree(t, fsImg)
	var warnings []string
	for _, force := range []bool{false, true} {
		dest := t.TempDir()
		_, err := Restore(context.Background(), tr.Single().FS, []string{"/"}, dest, RestoreOptions{Force: force, Warn: func(s string) { warnings = append(warnings, s) }})
		if !force && !errors.Is(err, ErrExists) {
			t.Errorf("a directory over a symlink of the same name: %v", err)
		}
		if force && err != nil {
			t.Errorf("force: %v", err)
		}
		if es, _ := os.ReadDir(outside); len(es) != 0 {
			t.Fatalf("restore wrote outside the destination: %v", es)
		}
		if _, err := os.Stat(filepath.Join(dest, "ok")); force && err != nil {
			t.Error(err)
		}
	}
	if len(warnings) < 2 || !strings.Contains(strings.Join(warnings, "\n"), "slash") {
		t.Errorf("warnings %q", warnings)
	}
}

func TestRestoreRefusesSymlinkInDestination(t *testing.T) {
	src := guesttree.Build(t, t.TempDir(), guesttree.Options{BigDir: 2, Deep: 2, NoSparse: true})
	tr := openTree(t, guesttree.Ext4(t, src, 16))
	dest, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dest, "etc")); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		_, err := Restore(context.Background(), tr.Single().FS, []string{"etc/config"}, dest, RestoreOptions{Force: force})
		if !errors.Is(err, ErrEscape) {
			t.Errorf("force %v: %v, want ErrEscape", force, err)
		}
	}
	if es, _ := os.ReadDir(outside); len(es) != 0 {
		t.Fatalf("restore wrote through a symlink: %v", es)
	}
}

func TestTreeAddressing(t *testing.T) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a := guesttree.Build(t, t.TempDir(), guesttree.Options{BigDir: 2, Deep: 2, NoSparse: true})
	script := "label: gpt\nstart=2048, size=40960, type=linux\nstart=43008, size=8192, type=swap\nstart=53248, size=40960, type=linux\n"
	swap := filepath.Join(t.TempDir(), "swap")
	must(os.WriteFile(swap, make([]byte, 4<<20), 0o600))
	guesttree.Run(t, nil, "mkswap", swap)
	img := guesttree.Disk(t, 50, script, map[int64]string{2048 * 512: guesttree.Ext4(t, a, 20), 43008 * 512: swap, 53248 * 512: guesttree.Ext4(t, a, 20)})
	tr := openTree(t, img)
	if tr.Single() != nil || len(tr.Readable()) != 2 {
		t.Fatalf("volumes: %d readable", len(tr.Readable()))
	}
	if v, _, err := tr.Locate("/"); v != nil || err != nil {
		t.Errorf("top: %v %v", v, err)
	}
	if v, rest, err := tr.Locate("/disk0-p3/etc/config"); err != nil || v.Name != "disk0-p3" || rest != "etc/config" {
		t.Errorf("locate: %v %q %v", v, rest, err)
	}
	if _, _, err := tr.Locate("/disk0-p2/x"); !errors.Is(err, ErrNoVolume) {
		t.Errorf("swap volume: %v", err)
	}
	if _, err := tr.Volume("0"); !errors.Is(err, ErrNoVolume) {
		t.Errorf("ambiguous disk: %v", err)
	}
	if v, err := tr.Volume("0:1"); err != nil || v.Name != "disk0-p1" {
		t.Errorf("0:1: %v %v", v, err)
	}
	if _, err := tr.Volume("0:2"); !errors.Is(err, ErrNoVolume) || !errors.Is(err, guestfs.ErrUnsupported) && !strings.Contains(err.Error(), "swap") {
		t.Errorf("0:2: %v", err)
	}
	for in, want := range map[string][2]string{
		"abc":           {"abc", ""},
		"abc:0":         {"abc", "0"},
		"vm:latest:0:1": {"vm:latest", "0:1"},
		"vm:latest":     {"vm:latest", ""},
		"1:2:3":         {"1", "2:3"},
	} {
		if p, s := SplitAddress(in); p != want[0] || s != want[1] {
			t.Errorf("SplitAddress(%q) = %q, %q", in, p, s)
		}
	}
}

func TestDiffAndFind(t *testing.T) {
	a := guesttree.Build(t, t.TempDir(), guesttree.Options{BigDir: 5, Deep: 2, NoSparse: true})
	b := t.TempDir()
	guesttree.Run(t, nil, "cp", "-a", a+"/.", b)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(b, "secret")))
	must(os.WriteFile(filepath.Join(b, "new.txt"), []byte("new"), 0o644))
	must(os.WriteFile(filepath.Join(b, "hello.txt"), []byte("HELLO, guest\n"), 0o644)) // same size
	must(os.Chmod(filepath.Join(b, "etc/config"), 0o600))
	must(os.WriteFile(filepath.Join(b, "data/big.bin"), []byte("short"), 0o644))
	guesttree.SetTimes(t, b) // same mtimes: hello.txt differs by content only
	ta, tb := openTree(t, guesttree.Ext4(t, a, 20)), openTree(t, guesttree.Ext4(t, b, 20))
	got := map[string]string{}
	err := Diff(context.Background(), ta.Single().FS, tb.Single().FS, "/", func(c Change) error {
		got[c.Path] = c.Kind + " " + strings.Join(c.Reasons, ",")
		return nil
	})
	must(err)
	want := map[string]string{
		"/secret":       "removed ",
		"/new.txt":      "added ",
		"/hello.txt":    "changed content",
		"/etc/config":   "changed mode",
		"/data/big.bin": "changed size",
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q, want %q", p, got[p], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("changes %v", got)
	}
	var found []string
	must(Find(tb.Single().FS, "*.txt", func(p string, _ guestfs.Stat) error { found = append(found, p); return nil }))
	if strings.Join(found, " ") != "/d/d/bottom.txt /hello.txt /new.txt" {
		t.Errorf("find *.txt: %v", found)
	}
	found = nil
	must(Find(tb.Single().FS, "/links/*", func(p string, _ guestfs.Stat) error { found = append(found, p); return nil }))
	if strings.Join(found, " ") != "/links/a /links/b" {
		t.Errorf("find /links/*: %v", found)
	}
}

// indexedDisk is an image with a chunk index made by hashing its 64 KiB
// chunks (zero chunks left out, as a backup does), counting bytes read.
type indexedDisk struct {
	imageDisk
	ix   *repo.Index
	read *atomic.Int64
}

func (d indexedDisk) Index() *repo.Index { return d.ix }

func (d indexedDisk) ReadAt(p []byte, off int64) (int, error) {
	d.read.Add(int64(len(p)))
	return d.imageDisk.ReadAt(p, off)
}

func openIndexed(t *testing.T, img string, read *atomic.Int64) *Tree {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	d := indexedDisk{imageDisk: imageDisk{f}, read: read}
	d.ix = &repo.Index{DiskSize: d.Size(), ChunkSize: 64 << 10}
	buf := make([]byte, 64<<10)
	for n := uint64(0); int64(n)*int64(len(buf)) < d.Size(); n++ {
		m, _ := f.ReadAt(buf, int64(n)*int64(len(buf)))
		if !bytes.Equal(buf[:m], make([]byte, m)) {
			d.ix.Entries = append(d.ix.Entries, repo.IndexEntry{N: n, ID: sha256.Sum256(buf[:m])})
		}
	}
	tr, err := OpenTree([]Disk{d})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestDiffVolumesSkipsSameChunks: a big file in the same chunks of both
// points is not read; a same-size, same-mtime change is still found.
func TestDiffVolumesSkipsSameChunks(t *testing.T) {
	src := guesttree.Build(t, t.TempDir(), guesttree.Options{BigDir: 5, Deep: 2, NoSparse: true})
	fsImg := guesttree.Ext4(t, src, 20)
	imgA := guesttree.Disk(t, 100, gptOne, map[int64]string{2048 * 512: fsImg})
	imgB := guesttree.Disk(t, 100, gptOne, map[int64]string{2048 * 512: fsImg})
	// change, in B, a small file in place (same size, same times) whose
	// chunk holds nothing of data/big.bin
	fsys := openTree(t, imgB).Single().FS
	big, err := fsys.Extents("data/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	const cs = 64 << 10
	bigFirst, bigLast := (2048*512+big[0].Physical)/cs, (2048*512+big[len(big)-1].Physical+big[len(big)-1].Length)/cs
	victim := ""
	var at int64
	for _, p := range []string{"hello.txt", "secret", "links/a", "etc/config", "d/d/bottom.txt"} {
		exts, err := fsys.Extents(p)
		if err != nil || len(exts) != 1 {
			t.Fatalf("%s extents %v %v", p, exts, err)
		}
		if c := (2048*512 + exts[0].Physical) / cs; c < bigFirst || c > bigLast {
			victim, at = p, 2048*512+exts[0].Physical
			break
		}
	}
	if victim == "" {
		t.Fatal("every small file shares a chunk with data/big.bin")
	}
	f, err := os.OpenFile(imgB, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XXXX"), at); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	var readA, readB atomic.Int64
	ta, tb := openIndexed(t, imgA, &readA), openIndexed(t, imgB, &readB)
	readA.Store(0)
	readB.Store(0)
	var got []string
	err = DiffVolumes(context.Background(), ta, ta.Single(), tb, tb.Single(), "/", func(c Change) error {
		got = append(got, c.Path+" "+strings.Join(c.Reasons, ","))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ";") != "/"+victim+" content" {
		t.Errorf("changes %q", got)
	}
	if r := readA.Load() + readB.Load(); r > 2<<20 {
		t.Errorf("read %d bytes: data/big.bin (3 MiB, the same chunks) was read", r)
	}
	// without chunk indexes the same diff reads the big file
	readA.Store(0)
	if err := Diff(context.Background(), ta.Single().FS, tb.Single().FS, "/", func(Change) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if readA.Load() < 3<<20 {
		t.Errorf("plain Diff read only %d bytes of A", readA.Load())
	}
}
