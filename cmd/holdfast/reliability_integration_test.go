package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pseudoRandom returns n incompressible bytes quickly.
func pseudoRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func countChunks(t *testing.T, repo string) int {
	n := 0
	_ = filepath.Walk(filepath.Join(repo, "chunks"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !strings.HasPrefix(fi.Name(), ".tmp-") {
			n++
		}
		return nil
	})
	return n
}

func TestKilledBackupLeavesNoPoint(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB", "--compression", "optimal")
	img := filepath.Join(e.dir, "big.img")
	writeImage(t, img, 512<<20, map[int64][]byte{0: pseudoRandom(1, 512<<20)})

	cmd := e.command(context.Background(), "backup", "--name", "vm1", img)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for countChunks(t, e.repo) < 40 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	stored := countChunks(t, e.repo)
	if stored >= 2048 {
		t.Skip("backup finished before it could be killed")
	}
	if ps := e.points(); len(ps) != 0 {
		t.Fatalf("killed backup left a visible point: %+v", ps)
	}
	if r := e.run("verify", "--read-data"); r.code != 0 {
		t.Fatalf("verify after kill: %+v", r)
	}
	b := e.backupJSON("vm1", img)
	if reused := b.Disks[0].BytesReused; reused < int64(stored-8)*256<<10 {
		t.Errorf("next backup reused %d bytes; %d chunks were already stored", reused, stored)
	}
	o := filepath.Join(e.dir, "o.img")
	e.ok("restore", "latest", "--to", o)
	sameFile(t, img, o)
}

func TestConcurrentBackups(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	imgs := make([]string, 3)
	for i := range imgs {
		imgs[i] = filepath.Join(e.dir, "d"+string(rune('a'+i))+".img")
		// b and c share their first half with a.
		data := pseudoRandom(uint64(i), 32<<20)
		copy(data, pseudoRandom(99, 16<<20))
		writeImage(t, imgs[i], 32<<20, map[int64][]byte{0: data})
	}
	var wg sync.WaitGroup
	res := make([]result, len(imgs))
	for i := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = e.run("backup", "--name", "vm"+string(rune('a'+i)), imgs[i])
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("backup %d: %+v", i, r)
		}
	}
	e.ok("verify", "--read-data")
	for i := range imgs {
		o := filepath.Join(e.dir, "o"+string(rune('a'+i))+".img")
		e.ok("restore", "vm"+string(rune('a'+i))+":latest", "--to", o)
		sameFile(t, imgs[i], o)
	}
}

// TestGCDuringBackup: the chunks of a forgotten point are unreferenced and
// old; a running backup of the same data reuses them while GC runs in a
// loop with no grace period. Every chunk the new point references must
// survive.
func TestGCDuringBackup(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	img := filepath.Join(e.dir, "a.img")
	small := filepath.Join(e.dir, "small.img")
	writeImage(t, img, 128<<20, map[int64][]byte{0: pseudoRandom(7, 128<<20)})
	writeImage(t, small, 1<<20, map[int64][]byte{0: []byte("small")})
	e.backupJSON("vm1", img)
	e.backupJSON("vm1", small)
	e.ok("forget", "--keep-last", "1")
	old := time.Now().Add(-2 * time.Hour)
	_ = filepath.Walk(filepath.Join(e.repo, "chunks"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			_ = os.Chtimes(p, old, old)
		}
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	gcRuns := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			cmd := e.command(context.Background(), "gc", "--grace", "0s")
			if out, err := cmd.CombinedOutput(); err != nil && !bytes.Contains(out, []byte("locked")) {
				t.Errorf("gc: %v: %s", err, out)
				return
			}
			gcRuns++
		}
	}()
	time.Sleep(50 * time.Millisecond)
	// Paced to last about 4 s, so GC runs many times meanwhile.
	b := e.backupJSON("vm1", "--read-limit", "32MiB", img)
	cancel()
	wg.Wait()
	t.Logf("%d gc runs during the backup; backup reused %d bytes", gcRuns, b.Disks[0].BytesReused)
	if gcRuns < 3 {
		t.Errorf("only %d gc runs overlapped the backup", gcRuns)
	}
	e.ok("verify", "--read-data")
	o := filepath.Join(e.dir, "o.img")
	e.ok("restore", b.Point, "--to", o)
	sameFile(t, img, o)
}

func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	e := newEnv(t)
	mnt := filepath.Join(e.dir, "small")
	_ = os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	e.repo = filepath.Join(mnt, "repo")
	e.vars = append(e.vars, "HOLDFAST_REPOSITORY="+e.repo)
	e.init("--chunk-size", "256KiB")
	a := filepath.Join(e.dir, "a.img")
	writeImage(t, a, 4<<20, map[int64][]byte{0: pseudoRandom(1, 4<<20)})
	first := e.backupJSON("vm1", a)
	big := filepath.Join(e.dir, "big.img")
	writeImage(t, big, 32<<20, map[int64][]byte{0: pseudoRandom(2, 32<<20)})
	r := e.run("backup", "--name", "vm1", big)
	if r.code != exitFailure || !strings.Contains(r.stderr, "no space left") {
		t.Fatalf("backup onto a full disk: %+v", r)
	}
	if ps := e.points(); len(ps) != 1 || ps[0].ID != first.Point {
		t.Fatalf("points after ENOSPC: %+v", ps)
	}
	e.ok("verify", "--read-data")
	o := filepath.Join(e.dir, "o.img")
	e.ok("restore", "latest", "--to", o)
	sameFile(t, a, o)
}

func TestInterruptedBackup(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	img := filepath.Join(e.dir, "a.img")
	writeImage(t, img, 64<<20, map[int64][]byte{0: pseudoRandom(3, 64<<20)})
	cmd := e.command(context.Background(), "backup", "--name", "vm1", "--read-limit", "8MiB", img)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// Interrupt it once it holds its lock (it is backing up: 8 s at the limit).
	done := startUntil(t, cmd, "a lock file", func() bool {
		locks, _ := os.ReadDir(filepath.Join(e.repo, "locks"))
		return len(locks) > 0
	})
	_ = cmd.Process.Signal(os.Interrupt)
	err := <-done
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("exit %d (%v), want %d; stderr %s", code, err, exitInterrupted, stderr.String())
	}
	if ps := e.points(); len(ps) != 0 {
		t.Fatalf("interrupted backup left a point: %+v", ps)
	}
	locks, _ := os.ReadDir(filepath.Join(e.repo, "locks"))
	if len(locks) != 0 {
		t.Fatalf("interrupted backup left %d lock file(s)", len(locks))
	}
}

// TestVerifyDuringBackups: verify runs in a loop while backups commit
// points; it must never report damage that is not there.
func TestVerifyDuringBackups(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	img := filepath.Join(e.dir, "a.img")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var runs atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			out, err := e.command(context.Background(), "verify").CombinedOutput()
			if err != nil {
				t.Errorf("verify during backups: %v\n%s", err, out)
				return
			}
			runs.Add(1)
		}
	}()
	// Six backups at least, and more until two verify runs overlapped them
	// (a loaded machine may verify slowly).
	for i := 0; !t.Failed() && (i < 6 || runs.Load() < 2); i++ {
		if i == 100 {
			t.Fatalf("only %d verify runs during %d backups", runs.Load(), i)
		}
		writeImage(t, img, 16<<20, map[int64][]byte{0: pseudoRandom(uint64(20+i), 16<<20)})
		e.backupJSON("vmv", img)
	}
	cancel()
	wg.Wait()
}
