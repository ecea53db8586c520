package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestBackupRestoreCycle(t *testing.T) {
	e := newEnv(t)
	e.init()
	img := filepath.Join(e.dir, "vm1.img")
	text := bytes.Repeat([]byte("a VM disk with some text in it\n"), 100000)
	writeImage(t, img, 64<<20, map[int64][]byte{0: randomBytes(3 << 20), 20 << 20: text})
	img2 := filepath.Join(e.dir, "vm1-data.img")
	writeImage(t, img2, 8<<20, map[int64][]byte{1 << 20: randomBytes(1 << 20)})

	b := e.backupJSON("vm1", img, "file://"+img2)
	if b.Point == "" || b.VM != "vm1" || len(b.Disks) != 2 {
		t.Fatalf("backup json: %+v", b)
	}
	d := b.Disks[0]
	if d.Index != 0 || d.Size != 64<<20 || d.ChunkSize != 1<<20 {
		t.Errorf("disk 0: %+v", d)
	}
	if d.BytesRead > 8<<20 {
		t.Errorf("read %d bytes of a disk with 6 MiB of data: holes were read", d.BytesRead)
	}
	if d.BytesZero < 56<<20 || d.BytesNew == 0 || d.BytesStored == 0 || d.BytesStored >= d.BytesNew {
		t.Errorf("disk 0 stats: %+v (text must compress)", d)
	}
	// Unchanged: nothing new.
	b2 := e.backupJSON("vm1", img, img2)
	for _, d := range b2.Disks {
		if d.BytesNew != 0 || d.BytesStored != 0 {
			t.Errorf("unchanged re-backup stored data: %+v", d)
		}
	}
	ps := e.points()
	if len(ps) != 2 || ps[0].ID != b.Point || ps[1].ID != b2.Point || diskCount(ps[0]) != 2 || ps[0].Time.IsZero() {
		t.Fatalf("points: %+v", ps)
	}
	for _, ref := range []string{b.Point, b.Point[:6], "latest", "vm1:latest"} {
		out := filepath.Join(e.dir, "restored-"+ref[:4]+".img")
		e.ok("restore", ref, "--disk", "0", "--to", out, "--force") // the ID and its prefix share a name
		sameFile(t, img, out)
	}
	out := filepath.Join(e.dir, "disk1.img")
	e.ok("restore", b.Point, "--disk", "1", "--to", out)
	sameFile(t, img2, out)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(e.dir, "restored-late.img"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 16<<20 {
		t.Errorf("restored image uses %d bytes: not sparse", st.Blocks*512)
	}
	if r := e.run("verify", "--read-data"); r.code != 0 || !strings.Contains(r.stdout, "no errors") {
		t.Fatalf("verify: %+v", r)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(e.ok("stats", "--json")), &s); err != nil {
		t.Fatal(err)
	}
	if s["dedup_ratio"].(float64) < 1.9 || s["compression_ratio"].(float64) <= 1 {
		t.Errorf("stats: %v", s)
	}
}

func TestExitCodes(t *testing.T) {
	e := newEnv(t)
	img := filepath.Join(e.dir, "a.img")
	writeImage(t, img, 1<<20, map[int64][]byte{0: []byte("x")})
	tests := []struct {
		name    string
		prepare func()
		vars    []string
		args    []string
		code    int
		stderr  string
	}{
		{"missing repository", nil, nil, []string{"points"}, exitNoRepository, "repository not found"},
		{"usage", nil, nil, []string{"backup", "--bogus"}, exitUsage, "unknown flag"},
		{"no name", nil, nil, []string{"backup", img}, exitUsage, "--name"},
		{"init", nil, nil, []string{"repo", "init"}, exitOK, ""},
		{"init twice", nil, nil, []string{"repo", "init"}, exitFailure, "already exists"},
		{"wrong password", nil, []string{"HOLDFAST_PASSWORD=wrong"}, []string{"points"}, exitWrongPass, "wrong password"},
		{"missing source", nil, nil, []string{"backup", "--name", "vm1", filepath.Join(e.dir, "nope.img")}, exitFailure, "nope.img"},
		{"source is a directory", nil, nil, []string{"backup", "--name", "vm1", e.dir}, exitFailure, e.dir},
		{"unknown source scheme", nil, nil, []string{"backup", "--name", "vm1", "ftp://u:hunter2@h/a.img"}, exitUsage, "unsupported source scheme \"ftp\""},
		{"malformed file URL", nil, nil, []string{"backup", "--name", "vm1", "file://otherhost/a.img"}, exitUsage, "remote host"},
		{"qemu VM among disks", nil, nil, []string{"backup", "--name", "vm1", img, "qemu:///run/qmp.sock"}, exitUsage, "whole VM"},
		{"bad chunk size", nil, nil, []string{"backup", "--name", "vm1", "--chunk-size", "3M", img}, exitUsage, "power of two"},
		{"unknown point", nil, nil, []string{"restore", "deadbeef", "--to", filepath.Join(e.dir, "o")}, exitFailure, "not found"},
		{"forget without policy", nil, nil, []string{"forget"}, exitUsage, "--keep"},
		{"scan without a database", nil, nil, []string{"scan", "deadbeef", "--clamav-db", filepath.Join(e.dir, "no-db")}, exitNotScanned, "not scanned"},
		{"scan with an unknown engine", nil, nil, []string{"scan", "deadbeef", "--engine", "sophos"}, exitUsage, "clamscan or yara"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			saved := e.vars
			e.vars = append(append([]string{}, e.vars...), tc.vars...)
			r := e.run(tc.args...)
			e.vars = saved
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", r.code, tc.code, r.stderr, tc.stderr)
			}
			if strings.Contains(r.stderr+r.stdout, "correct horse") || strings.Contains(r.stderr+r.stdout, "hunter2") {
				t.Fatal("password leaked into output")
			}
		})
	}
	if ps := e.points(); len(ps) != 0 {
		t.Fatalf("failed backups left points: %+v", ps)
	}
}

func TestPasswordFile(t *testing.T) {
	e := newEnv(t)
	pw := filepath.Join(e.dir, "pw")
	_ = os.WriteFile(pw, []byte("from a file\n"), 0o600)
	e.vars = []string{"HOLDFAST_TEST_MAIN=1", "HOLDFAST_REPOSITORY=" + e.repo, "HOLDFAST_PASSWORD="}
	if r := e.run("repo", "init"); r.code != exitUsage {
		t.Fatalf("init without password: %+v", r)
	}
	e.ok("repo", "init", "--password-file", pw)
	e.ok("points", "--password-file", pw)
	e.vars = append(e.vars, "HOLDFAST_PASSWORD=from a file")
	e.ok("points")
}

func TestCorruptionIsFound(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	img := filepath.Join(e.dir, "a.img")
	writeImage(t, img, 4<<20, map[int64][]byte{0: randomBytes(4 << 20)})
	b := e.backupJSON("vm1", img)
	e.backupJSON("vm2", img)
	// Flip one byte in the middle of one chunk file.
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
	victim := chunks[5]
	data, _ := os.ReadFile(victim)
	data[len(data)/2] ^= 0x01
	_ = os.WriteFile(victim, data, 0o600)

	if r := e.run("verify"); r.code != 0 {
		t.Fatalf("metadata verify should pass (the chunk exists): %+v", r)
	}
	r := e.run("verify", "--read-data")
	if r.code != exitDamage {
		t.Fatalf("verify --read-data exit %d, want %d: %s", r.code, exitDamage, r.stdout)
	}
	id := filepath.Base(victim)
	for _, want := range []string{b.Point, "vm2", id, "disk 0 bytes "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify output does not name %q:\n%s", want, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, "DAMAGED"); n != 2 {
		t.Errorf("%d damage lines, want 2 (one per point):\n%s", n, r.stdout)
	}
	out := filepath.Join(e.dir, "out.img")
	rr := e.run("restore", "latest", "--to", out)
	if rr.code == 0 || !strings.Contains(rr.stderr, id) {
		t.Fatalf("restore over a corrupt chunk: %+v", rr)
	}
}

func TestForgetAndGC(t *testing.T) {
	e := newEnv(t)
	e.init()
	img := filepath.Join(e.dir, "a.img")
	var ids []string
	for i := 0; i < 3; i++ {
		writeImage(t, img, 4<<20, map[int64][]byte{0: randomBytes(1 << 20)})
		ids = append(ids, e.backupJSON("vm1", img).Point)
	}
	out := e.ok("forget", "--keep-last", "1", "--dry-run")
	if !strings.Contains(out, "would remove "+ids[0]) || len(e.points()) != 3 {
		t.Fatalf("dry run: %s", out)
	}
	e.ok("forget", "--keep-last", "1")
	if ps := e.points(); len(ps) != 1 || ps[0].ID != ids[2] {
		t.Fatalf("after forget: %+v", ps)
	}
	var before, after map[string]any
	_ = json.Unmarshal([]byte(e.ok("gc", "--json", "--grace", "1h")), &before)
	if before["removed_chunks"].(float64) != 0 {
		t.Fatalf("gc within grace removed chunks: %v", before)
	}
	_ = json.Unmarshal([]byte(e.ok("gc", "--json", "--grace", "0s")), &after)
	if after["removed_chunks"].(float64) != 2 {
		t.Fatalf("gc removed %v chunks, want 2", after)
	}
	e.ok("verify", "--read-data")
	o := filepath.Join(e.dir, "o.img")
	e.ok("restore", "latest", "--to", o)
	sameFile(t, img, o)
}

func TestQcow2Source(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed (apt-get install qemu-utils)")
	}
	e := newEnv(t)
	e.init()
	q := filepath.Join(e.dir, "d.qcow2")
	raw := filepath.Join(e.dir, "d.raw")
	for _, c := range [][]string{
		{"qemu-img", "create", "-q", "-f", "qcow2", q, "100M"},
		{"qemu-io", "-f", "qcow2", "-c", "write -P 0xab 1M 3M", "-c", "write -P 0x11 50M 64k", q},
		{"qemu-img", "convert", "-O", "raw", q, raw},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	b := e.backupJSON("vmq", q)
	if b.Disks[0].Format != "qcow2" || b.Disks[0].Size != 100<<20 || b.Disks[0].BytesRead > 5<<20 {
		t.Fatalf("qcow2 backup: %+v", b.Disks[0])
	}
	o := filepath.Join(e.dir, "o.img")
	e.ok("restore", "latest", "--to", o)
	sameFile(t, raw, o)
}
