package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

const (
	filesGPT = "label: gpt\nstart=2048, size=180224, type=linux\n"
	filesMBR = "label: dos\nstart=2048, size=2095104, type=83\n"
)

// filesPoint backs up two disks: disk 0 (GPT) with the full test tree on
// ext4, disk 1 (MBR) with it on xfs (a proto file: no sparse file, no hard
// links). It returns the point and the source trees.
func filesPoint(t *testing.T, e *env) (point, src, xsrc string) {
	t.Helper()
	src = guesttree.Build(t, filepath.Join(e.dir, "src"), guesttree.Options{})
	xsrc = guesttree.Build(t, filepath.Join(e.dir, "xsrc"), guesttree.Options{BigDir: 50, NoSparse: true})
	if err := os.Chmod(filepath.Join(xsrc, "sticky"), 0o777); err != nil { // a proto file has no sticky bit
		t.Fatal(err)
	}
	d0 := guesttree.Disk(t, 100, filesGPT, map[int64]string{2048 * 512: guesttree.Ext4(t, src, 80)})
	d1 := guesttree.Disk(t, 1030, filesMBR, map[int64]string{2048 * 512: guesttree.XFSProto(t, xsrc)})
	return e.backupJSON("vm1", d0, d1).Point, src, xsrc
}

func TestFilesLsFindRestore(t *testing.T) {
	e := newEnv(t)
	e.init()
	point, src, xsrc := filesPoint(t, e)

	// two readable volumes: they are the top directories
	if out := e.ok("files", "ls", point); out != "/disk0-p1\n/disk1-p1\n" {
		t.Errorf("ls top: %q", out)
	}
	out := e.ok("files", "ls", "-l", point+":0:1", "/etc")
	if !strings.Contains(out, "-rw-r----- ") || !strings.Contains(out, " 5000 2019-03-04 05:06:07 /etc/config") {
		t.Errorf("ls -l /etc: %q", out)
	}
	var es []fileEntry
	if err := json.Unmarshal([]byte(e.ok("files", "ls", "--json", point+":1", "/")), &es); err != nil {
		t.Fatal(err)
	}
	if len(es) < 10 || es[0].Volume != "disk1-p1" {
		t.Errorf("ls --json of disk 1: %+v", es)
	}
	if out := e.ok("files", "ls", "-l", point, "/disk0-p1/long-link"); !strings.Contains(out, "-> very-long-directory-name/") {
		t.Errorf("ls of a long symlink: %q", out)
	}
	out = e.ok("files", "find", point, "hello*")
	if out != "/disk0-p1/hello.txt\n/disk1-p1/hello.txt\n" {
		t.Errorf("find: %q", out)
	}
	if out := e.ok("files", "find", point+":0:1", "/d/*/bottom.txt"); out != "" {
		t.Errorf("find of a path two levels down with one star: %q", out)
	}

	// restore everything of each volume and compare with the sources
	dest := filepath.Join(e.dir, "restored")
	root := os.Geteuid() == 0
	e.ok("files", "restore", point+":0:1", "/", "--to", dest, "--keep-setid")
	if err := os.Remove(filepath.Join(dest, "lost+found")); err != nil {
		t.Fatal(err)
	}
	guesttree.Compare(t, src, dest, guesttree.CompareOptions{Owners: root, Times: true, Links: true, Sparse: true})
	// without --keep-setid the setuid program loses its bits, with a warning
	nosuid := filepath.Join(e.dir, "nosuid")
	if r := e.run("files", "restore", point+":0:1", "/bin/suid", "--to", nosuid); r.code != 0 || !strings.Contains(r.stderr, "--keep-setid") {
		t.Errorf("restore of a setuid program: %+v", r)
	}
	if fi, err := os.Stat(filepath.Join(nosuid, "bin/suid")); err != nil || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		t.Errorf("setuid program restored as %v (%v)", fi.Mode(), err)
	}
	xdest := filepath.Join(e.dir, "xrestored")
	e.ok("files", "restore", point, "/disk1-p1/", "--to", xdest, "--keep-setid")
	guesttree.Compare(t, xsrc, filepath.Join(xdest, "disk1-p1"), guesttree.CompareOptions{Owners: root})

	// an existing file is not replaced without --force; a missing path is exit 1
	if r := e.run("files", "restore", point+":0:1", "/hello.txt", "--to", dest); r.code != exitUsage || !strings.Contains(r.stderr, "hello.txt") {
		t.Errorf("restore over an existing file: %+v", r)
	}
	e.ok("files", "restore", point+":0:1", "/hello.txt", "--to", dest, "--force")
	for _, args := range [][]string{
		{"files", "ls", point + ":0:1", "/no/such"},
		{"files", "restore", point + ":0:1", "/no/such", "--to", dest},
		{"files", "ls", point, "/disk7-p1/etc"},
	} {
		if r := e.run(args...); r.code != exitFailure || !strings.Contains(r.stderr, "no such") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	if r := e.run("files", "ls", point+":0:9"); r.code != exitFailure || !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("missing volume: %+v", r)
	}
}

// TestFilesRestoreNotRoot restores as the user nobody from a repository
// that user can read: no root, no mount.
func TestFilesRestoreNotRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching to the user nobody needs root")
	}
	guesttree.Tool(t, "setpriv")
	e := newEnv(t)
	e.init()
	point, src, _ := filesPoint(t, e)
	// nobody must reach the binary, the repository and a destination
	bin := filepath.Join(e.dir, "holdfast.test")
	copyExecutable(t, os.Args[0], bin)
	for p := e.dir; p != "/"; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil && p == e.dir {
			t.Fatal(err)
		}
		if p == os.TempDir() {
			break
		}
	}
	guesttree.Run(t, nil, "chmod", "-R", "a+rX", e.repo)
	dest := filepath.Join(e.dir, "nobody")
	if err := os.Mkdir(dest, 0o755); err != nil || os.Chown(dest, 65534, 65534) != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "files", "restore", point+":0:1", "/", "--to", dest, "--keep-setid")
	cmd.Env = append(os.Environ(), e.vars...)
	cmd.Dir = dest
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("files restore as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "owners are not restored") {
		t.Errorf("no note about owners: %s", out)
	}
	if err := os.Remove(filepath.Join(dest, "lost+found")); err != nil {
		t.Fatal(err)
	}
	guesttree.Compare(t, src, dest, guesttree.CompareOptions{Times: true, Links: true, Sparse: true})
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFilesDiff(t *testing.T) {
	e := newEnv(t)
	e.init()
	a := guesttree.Build(t, filepath.Join(e.dir, "a"), guesttree.Options{BigDir: 5, Deep: 2, NoSparse: true})
	b := filepath.Join(e.dir, "b")
	guesttree.Run(t, nil, "cp", "-a", a, b)
	if err := os.Remove(filepath.Join(b, "secret")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "hello.txt"), []byte("HELLO, guest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "etc/new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	guesttree.SetTimes(t, b)
	p1 := e.backupJSON("vm1", guesttree.Disk(t, 100, filesGPT, map[int64]string{2048 * 512: guesttree.Ext4(t, a, 80)})).Point
	p2 := e.backupJSON("vm1", guesttree.Disk(t, 100, filesGPT, map[int64]string{2048 * 512: guesttree.Ext4(t, b, 80)})).Point
	out := e.ok("files", "diff", p1, p2)
	if out != "+ /etc/new\nM /hello.txt (content)\n- /secret\n" {
		t.Errorf("diff: %q", out)
	}
	if out := e.ok("files", "diff", p1, p2, "/etc"); out != "+ /etc/new\n" {
		t.Errorf("diff /etc: %q", out)
	}
	if out := e.ok("files", "diff", p1+":0:1", p1+":0:1"); out != "" {
		t.Errorf("diff of a point with itself: %q", out)
	}
}

// TestFilesDamage: a damaged partition table or filesystem in a point is
// a clear error and exit 1, never a panic.
func TestFilesDamage(t *testing.T) {
	e := newEnv(t)
	e.init()
	src := guesttree.Build(t, filepath.Join(e.dir, "src"), guesttree.Options{BigDir: 5, Deep: 2, NoSparse: true})
	fsImg := guesttree.Ext4(t, src, 80)

	badTable := guesttree.Disk(t, 100, filesGPT, map[int64]string{2048 * 512: fsImg})
	patchFile(t, badTable, 512+16, []byte{0xde, 0xad})         // the GPT header's CRC
	patchFile(t, badTable, 100<<20-512+16, []byte{0xde, 0xad}) // and the backup header's
	// a filesystem whose group descriptors point at nothing
	badFS := guesttree.Disk(t, 100, filesGPT, map[int64]string{2048 * 512: fsImg})
	patchFile(t, badFS, 2048*512+4096+8, []byte{0xff, 0xff, 0xff, 0x7f})
	for _, c := range []struct {
		img, want string
	}{
		{badTable, "damaged partition table"},
		{badFS, "disk0-p1: lstat /: damaged filesystem"},
	} {
		point := e.backupJSON("bad", c.img).Point
		for _, args := range [][]string{{"files", "ls", point}, {"files", "find", point, "*"}, {"files", "restore", point, "/", "--to", filepath.Join(e.dir, "x")}} {
			r := e.run(args...)
			if r.code != exitFailure || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "panic") {
				t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", args, r.code, r.stderr, c.want)
			}
		}
	}
}

// TestFilesRestoreDamagedEntry: one damaged inode is skipped with a
// warning, the rest restored and counted, and the exit code says the
// restore was not whole (1).
func TestFilesRestoreDamagedEntry(t *testing.T) {
	guesttree.Tool(t, "debugfs")
	e := newEnv(t)
	e.init()
	src := filepath.Join(e.dir, "src")
	for name, data := range map[string]string{"a.txt": "a", "bad.txt": "bad", "z/z.txt": "z"} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsImg := guesttree.Ext4(t, src, 80)
	guesttree.Run(t, nil, "debugfs", "-w", "-R", "sif /bad.txt block[0] 0", fsImg)
	point := e.backupJSON("dmg", guesttree.Disk(t, 100, filesGPT, map[int64]string{2048 * 512: fsImg})).Point
	dest := filepath.Join(e.dir, "out")
	r := e.run("files", "restore", point, "/", "--to", dest)
	if r.code != exitFailure || !strings.Contains(r.stderr, "bad.txt") || !strings.Contains(r.stderr, "1 damaged entries skipped") ||
		!strings.Contains(r.stdout, "restored 2 files") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "z/z.txt")); err != nil || string(b) != "z" {
		t.Errorf("z/z.txt: %q %v", b, err)
	}
}

func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestFilesRestoreSharedData: five files each mapping almost the whole
// volume restore as four (4 × the volume), the fifth named, exit 1;
// --allow-shared-extents restores all five.
func TestFilesRestoreSharedData(t *testing.T) {
	e := newEnv(t)
	e.init()
	point := e.backupJSON("shared", guesttree.SharedExt4(t, 5)).Point
	dest := filepath.Join(e.dir, "out")
	r := e.run("files", "restore", point, "/", "--to", dest)
	if r.code != exitFailure || !strings.Contains(r.stderr, "/f4: not restored") || !strings.Contains(r.stderr, "--allow-shared-extents") ||
		!strings.Contains(r.stdout, "restored 4 files") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = e.run("files", "restore", point, "/", "--to", filepath.Join(e.dir, "all"), "--allow-shared-extents")
	if r.code != 0 || !strings.Contains(r.stdout, "restored 5 files") {
		t.Errorf("with --allow-shared-extents: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}
