package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// eicarString is the EICAR anti-malware test string.
const eicarString = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// needScanTools skips unless the test can publish points (root, FUSE)
// and has the tools to build images and scan them.
func needScanTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("scan needs root (publish attaches loop devices and mounts)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	for _, tool := range []string{"clamscan", "sigtool", "yara", "sfdisk", "mkfs.ext4", "losetup", "partx"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// buildExt4Image makes a 64 MiB GPT disk image at img with one ext4
// partition (1 MiB in) holding files (name → content).
func buildExt4Image(t *testing.T, img string, files map[string]string) {
	t.Helper()
	src := t.TempDir()
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode, dirMode := os.FileMode(0o644), os.FileMode(0o755)
		if strings.HasPrefix(name, "root/") { // root's alone, as in a guest: the scan user reads it all the same
			mode, dirMode = 0o600, 0o700
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Dir(p), dirMode); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Remove(img)
	steps := [][]string{
		{"truncate", "-s", "64M", img},
		{"sh", "-c", `printf 'label: gpt\nstart=2048, size=61440, type=linux\n' | sfdisk -q "$1"`, "sh", img},
		{"mkfs.ext4", "-q", "-F", "-d", src, "-E", "offset=1048576", img, "30M"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", s, err, out)
		}
	}
}

// scanTestDB makes a ClamAV database matching EICAR with sigtool, and a
// yara rules file matching it too.
func scanTestDB(t *testing.T, dir string) (db, rules string) {
	t.Helper()
	db = filepath.Join(dir, "clamdb")
	if err := os.MkdirAll(db, 0o755); err != nil {
		t.Fatal(err)
	}
	eicar := filepath.Join(dir, "eicar.com")
	if err := os.WriteFile(eicar, []byte(eicarString), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sigtool", "--md5", "eicar.com")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sigtool: %v", err)
	}
	if err := os.WriteFile(filepath.Join(db, "test.hdb"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	rules = filepath.Join(dir, "eicar.yar")
	rule := "rule eicar_test { strings: $e = \"EICAR-STANDARD-ANTIVIRUS-TEST-FILE\" condition: $e }\n"
	if err := os.WriteFile(rules, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	return db, rules
}

// TestScanEndToEnd: five points of one VM, infected from the third on
// (a file holding EICAR); scan finds it with clamscan and with yara
// (exit 1, the guest path), a clean point exits 0, a missing database
// exits 7, results show in points, --find-clean picks point 2,
// restore --scan refuses point 3 unless --on-infection continue, and
// forget takes the records along. Nothing stays mounted.
func TestScanEndToEnd(t *testing.T) {
	needScanTools(t)
	e := newEnv(t)
	e.init()
	db, rules := scanTestDB(t, e.dir)
	vm := "scan-e2e-" + filepath.Base(e.dir)
	img := filepath.Join(e.dir, "disk.img")
	var ids []string
	for i := 1; i <= 5; i++ {
		files := map[string]string{"etc/hostname": vm + "\n", "var/log/n": strings.Repeat("x", i)}
		if i >= 3 {
			files["home/user/my docs: 1/eicar.com"] = eicarString
		}
		if i == 5 { // a name with a newline: one finding, printed escaped
			files["tmp/we\nird: x FOUND.com"] = eicarString
			files["root/.secret/eicar.com"] = eicarString // 0600 in a 0700 directory, owned by root
		}
		buildExt4Image(t, img, files)
		ids = append(ids, e.backupJSON(vm, img).Point)
	}
	const guestPath = "/home/user/my docs: 1/eicar.com"

	r := e.run("scan", ids[2], "--clamav-db", db)
	if r.code != exitFailure || !strings.Contains(r.stdout, guestPath) || !strings.Contains(r.stdout, "disk0-p1") ||
		strings.Contains(r.stdout, "holdfast.mount.") || !strings.Contains(r.stderr, "malware found") {
		t.Fatalf("clamscan of point 3: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = e.run("scan", ids[2], "--engine", "yara", "--yara-rules", rules, "--json")
	var sj scanJSON
	if err := json.Unmarshal([]byte(r.stdout), &sj); err != nil || r.code != exitFailure || sj.Result != repo.ScanInfected ||
		len(sj.Findings) != 1 || sj.Findings[0].Path != guestPath || sj.Findings[0].Signature != "eicar_test" {
		t.Fatalf("yara of point 3: exit %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	r = e.run("scan", ids[4], "--clamav-db", db)
	if r.code != exitFailure || !strings.Contains(r.stdout, `/tmp/we\nird: x FOUND.com`) || !strings.Contains(r.stdout, "3 finding(s)") ||
		!strings.Contains(r.stdout, "/root/.secret/eicar.com") {
		t.Fatalf("clamscan of point 5: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r = e.run("scan", ids[0], "--clamav-db", db); r.code != exitOK || !strings.Contains(r.stdout, "clean") {
		t.Fatalf("clamscan of point 1: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r = e.run("scan", ids[0], "--clamav-db", filepath.Join(e.dir, "nothing")); r.code != exitNotScanned {
		t.Fatalf("scan without a database: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	ps := e.points()
	if ps[0].Scan == nil || ps[0].Scan.Result != repo.ScanClean || ps[2].Scan == nil || ps[2].Scan.Result != repo.ScanInfected ||
		ps[2].Scan.Findings != 1 || ps[2].Scan.Engine != "yara" || ps[1].Scan != nil {
		t.Fatalf("points: %+v %+v %+v", ps[0].Scan, ps[1].Scan, ps[2].Scan)
	}
	if out := e.ok("points"); !strings.Contains(out, "SCAN") || !strings.Contains(out, "infected 1") {
		t.Fatalf("points table:\n%s", out)
	}

	// Points 1 (clean), 3 and 5 (infected) are recorded for clamscan: the
	// search reuses 5 and 3, and scans 2 only.
	var fc findCleanJSON
	r = e.run("scan", "--find-clean", vm, "--clamav-db", db, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &fc); err != nil || r.code != exitOK || fc.Point == nil || *fc.Point != ids[1] {
		t.Fatalf("find-clean: exit %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	want := []findCleanCheck{{ids[4], repo.ScanInfected, true}, {ids[2], repo.ScanInfected, true}, {ids[1], repo.ScanClean, false}}
	if len(fc.Checked) != len(want) {
		t.Fatalf("find-clean checked %+v, want %+v", fc.Checked, want)
	}
	for i := range want {
		if fc.Checked[i] != want[i] {
			t.Fatalf("find-clean checked %+v, want %+v", fc.Checked, want)
		}
	}

	out := filepath.Join(e.dir, "restored.img")
	r = e.run("restore", ids[2], "--to", out, "--scan", "--clamav-db", db)
	if _, err := os.Stat(out); r.code != exitFailure || !strings.Contains(r.stderr, "refused") || err == nil {
		t.Fatalf("secure restore of point 3: exit %d, target %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	r = e.run("restore", ids[2], "--to", out, "--scan", "--clamav-db", db, "--on-infection", "continue")
	if _, err := os.Stat(out); r.code != exitOK || err != nil || !strings.Contains(r.stderr, "infected") {
		t.Fatalf("restore --on-infection continue: exit %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	e.ok("restore", ids[1], "--to", filepath.Join(e.dir, "clean.img"), "--scan", "--clamav-db", db)

	// Instant recovery: the infected point is refused; with --on-infection
	// continue the point scanned ("latest" resolved once) is served.
	e.vars = append(e.vars, "HOLDFAST_STATE_DIR="+filepath.Join(e.dir, "state"))
	r = e.run("instant-recovery", "start", ids[2], "--scan", "--clamav-db", db, "--nbd", freeAddr(t))
	if r.code != exitFailure || !strings.Contains(r.stderr, "refused") || strings.TrimSpace(e.ok("instant-recovery", "list", "--json")) != "[]" {
		t.Fatalf("instant-recovery start --scan of point 3: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rec := startInstant(t, e, vm+":latest", "--scan", "--engine", "yara", "--yara-rules", rules, "--on-infection", "continue", "--nbd", freeAddr(t))
	if rec.Point != ids[4] {
		t.Fatalf("instant recovery of %s, want %s", rec.Point, ids[4])
	}

	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil || strings.Contains(string(mounts), "/"+vm+"/") {
		t.Fatalf("a scan left a mount of %s: %v\n%s", vm, err, mounts)
	}
	e.ok("forget", "--keep-last", "1")
	for _, id := range ids[:4] {
		if _, err := os.Stat(filepath.Join(e.repo, "scans", id)); err == nil {
			ents, _ := os.ReadDir(filepath.Join(e.repo, "scans", id))
			if len(ents) > 0 {
				t.Fatalf("forget left the scan records of %s", id)
			}
		}
	}
}

// TestScanInterrupted: Ctrl-C while the engine runs stops it, unpublishes
// the point (no mount of the session stays: filesystems, FUSE) and
// records nothing; holdfast exits 130.
func TestScanInterrupted(t *testing.T) {
	needScanTools(t)
	e := newEnv(t)
	e.init()
	db, _ := scanTestDB(t, e.dir)
	vm := "scan-int-" + filepath.Base(e.dir)
	img := filepath.Join(e.dir, "disk.img")
	buildExt4Image(t, img, map[string]string{"etc/hostname": vm})
	id := e.backupJSON(vm, img).Point

	// A clamscan that says it started, then runs until killed.
	bin := filepath.Join(e.dir, "bin")
	marks := filepath.Join(e.dir, "engine") // the engine runs as the scan user: it writes only where anyone may
	if err := os.Mkdir(marks, 0o777); err != nil || os.Chmod(marks, 0o777) != nil {
		t.Fatal(err)
	}
	started := filepath.Join(marks, "started")
	script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'ClamAV 1.4.6'; exit 0; fi\ntouch " + started + "\nexec sleep 600\n"
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "clamscan"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "PATH="+bin+":"+os.Getenv("PATH"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := e.command(ctx, "scan", id, "--clamav-db", db)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("scan ended before the engine started: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The session's mounts, while the engine runs: its filesystems (under
	// the mount dir holdfast.mount.ID/VM/) and its FUSE export (holdfast-ID).
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	session := ""
	for _, line := range strings.Split(string(info), "\n") {
		if i := strings.Index(line, "holdfast.mount."); i >= 0 && strings.Contains(line, "/"+vm+"/") {
			session = strings.SplitN(line[i+len("holdfast.mount."):], "/", 2)[0]
		}
	}
	if session == "" {
		t.Fatalf("no mount of %s while scanning:\n%s", vm, info)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = <-done
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("interrupted scan: %v\n%s", err, stderr.String())
	}
	if info, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(info), session) {
		t.Fatalf("the interrupted scan left mounts of %s:\n%s", session, info)
	}
	if ps := e.points(); ps[0].Scan != nil {
		t.Fatalf("an interrupted scan was recorded: %+v", ps[0].Scan)
	}
}
