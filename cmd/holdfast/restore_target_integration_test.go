package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// restoreFixture backs up a 4 MiB disk of random data (256 KiB chunks)
// and returns the image and its point.
func restoreFixture(t *testing.T, e *env) (string, string) {
	t.Helper()
	e.init("--chunk-size", "256KiB")
	img := filepath.Join(e.dir, "src.img")
	writeImage(t, img, 4<<20, map[int64][]byte{0: pseudoRandom(9, 4<<20)})
	return img, e.backupJSON("vm1", img).Point
}

// noRestoreTemps fails if a restore left a temporary file in dir.
func noRestoreTemps(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		if strings.Contains(de.Name(), ".holdfast-restore-") {
			t.Errorf("temporary file %s left behind", de.Name())
		}
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestRestoreExistingTarget: a restore never replaces a non-empty file
// unless told to (--force, exit 2 without), replaces it atomically when
// told (a new inode, the old mode), and refuses a file another process
// holds (qemu-nbd's image locks, as a running VM's) even with --force.
func TestRestoreExistingTarget(t *testing.T) {
	e := newEnv(t)
	src, point := restoreFixture(t, e)
	old := []byte("the user's own data, not to be lost\n")
	tests := []struct {
		name    string
		content []byte // nil: no file
		args    []string
		hold    bool // qemu-nbd holds the file open for writing
		code    int
		stderr  string
	}{
		{"new file", nil, nil, false, exitOK, ""},
		{"empty file", []byte{}, nil, false, exitOK, ""},
		{"non-empty file", old, nil, false, exitUsage, "--force"},
		{"non-empty file, --force", old, []string{"--force"}, false, exitOK, ""},
		{"held by qemu-nbd, --force", old, []string{"--force"}, true, exitFailure, "in use"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(e.dir, "case"+string(rune('a'+i)))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, "disk.img")
			var ino uint64
			if tc.content != nil {
				if err := os.WriteFile(target, tc.content, 0o640); err != nil {
					t.Fatal(err)
				}
				ino = inode(t, target)
			}
			if tc.hold {
				needTools(t, "qemu-nbd")
				holdImage(t, filepath.Join(dir, "nbd.sock"), target)
			}
			r := e.run(append([]string{"restore", point, "--to", target}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", r.code, tc.code, r.stderr, tc.stderr)
			}
			noRestoreTemps(t, dir)
			if tc.code != exitOK {
				if got, err := os.ReadFile(target); err != nil || !bytes.Equal(got, tc.content) {
					t.Fatalf("refused restore changed %s (%v)", target, err)
				}
				return
			}
			sameFile(t, src, target)
			if tc.content == nil {
				return
			}
			if inode(t, target) == ino {
				t.Error("the file was rewritten in place, not replaced by rename")
			}
			if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("replaced file mode %v (%v), want the old 0640", fi.Mode(), err)
			}
		})
	}
}

// holdImage runs qemu-nbd on a raw image, which takes QEMU's image locks
// as a running VM does, until the test ends.
func holdImage(t *testing.T, sock, img string) {
	t.Helper()
	cmd := exec.Command("qemu-nbd", "-t", "-f", "raw", "-k", sock, img)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return // it listens: the image is open and locked
		}
		select {
		case <-done:
			t.Fatalf("qemu-nbd exited: %s", stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("qemu-nbd did not start")
		}
	}
}

// TestRestoreFailureKeepsTarget: a restore that meets a damaged chunk
// exits 5 and leaves an existing target byte for byte as it was (raw and
// qcow2), a new target not created, and no temporary file behind.
func TestRestoreFailureKeepsTarget(t *testing.T) {
	e := newEnv(t)
	_, point := restoreFixture(t, e)
	var chunks []string
	_ = filepath.Walk(filepath.Join(e.repo, "chunks"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			chunks = append(chunks, p)
		}
		return nil
	})
	if len(chunks) != 16 {
		t.Fatalf("%d chunk files, want 16", len(chunks))
	}
	victim := chunks[len(chunks)-1]
	data, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(victim, data, 0o600); err != nil {
		t.Fatal(err)
	}
	old := pseudoRandom(3, 1<<20)
	for _, tc := range []struct {
		name, file string
		existing   bool
		tools      []string
	}{
		{"raw, existing", "disk.img", true, nil},
		{"raw, new", "new.img", false, nil},
		{"qcow2, existing", "disk.qcow2", true, []string{"qemu-img", "qemu-nbd"}},
		{"qcow2, new", "new.qcow2", false, []string{"qemu-img", "qemu-nbd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needTools(t, tc.tools...)
			dir := t.TempDir()
			target := filepath.Join(dir, tc.file)
			if tc.existing {
				if err := os.WriteFile(target, old, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := e.run("restore", point, "--to", target, "--force", "--workers", "1")
			if r.code != exitDamage || !strings.Contains(r.stderr, filepath.Base(victim)) ||
				!strings.Contains(r.stderr, "left as it was") {
				t.Fatalf("restore over a damaged chunk: exit %d (want %d), stderr %q", r.code, exitDamage, r.stderr)
			}
			noRestoreTemps(t, dir)
			got, err := os.ReadFile(target)
			switch {
			case !tc.existing && !os.IsNotExist(err):
				t.Fatalf("failed restore created %s (%v)", target, err)
			case tc.existing && (err != nil || !bytes.Equal(got, old)):
				t.Fatalf("failed restore changed %s (%v)", target, err)
			}
		})
	}
}

// TestRestoreMissingDataIsDamage: a chunk or index file missing from the
// repository is damage (exit 5), not a generic failure.
func TestRestoreMissingDataIsDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remove func(t *testing.T, repo, point string) string // returns the removed file's name
	}{
		{"missing chunk", func(t *testing.T, repo, point string) string {
			dirs, _ := filepath.Glob(filepath.Join(repo, "chunks", "*", "*"))
			if len(dirs) == 0 {
				t.Fatal("no chunk files")
			}
			os.Remove(dirs[0])
			return filepath.Base(dirs[0])
		}},
		{"missing index", func(t *testing.T, repo, point string) string {
			p := filepath.Join(repo, "indexes", point, "disk-0")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return "disk-0"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, point := restoreFixture(t, e)
			name := tc.remove(t, e.repo, point)
			target := filepath.Join(e.dir, "out.img")
			r := e.run("restore", point, "--to", target)
			if r.code != exitDamage || !strings.Contains(r.stderr, name) || !strings.Contains(r.stderr, "missing") {
				t.Fatalf("exit %d (want %d), stderr %q (want it to name %s)", r.code, exitDamage, r.stderr, name)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("failed restore left %s (%v)", target, err)
			}
		})
	}
}
