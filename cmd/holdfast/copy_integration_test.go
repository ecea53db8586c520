package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/testutil/cutproxy"
	"github.com/holdfast-backup/holdfast/internal/testutil/s3test"
)

// copyJSON is the output of copy --json.
type copyJSON struct {
	Copied []struct {
		ID string `json:"id"`
		VM string `json:"vm"`
	} `json:"copied"`
	Skipped       []string `json:"skipped"`
	PointsCopied  int      `json:"points_copied"`
	ChunksSent    int      `json:"chunks_sent"`
	ChunksPresent int      `json:"chunks_present"`
	BytesSent     int64    `json:"bytes_sent"`
}

func (e *env) copyJSON(args ...string) copyJSON {
	e.t.Helper()
	var c copyJSON
	out := e.ok(append([]string{"copy", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		e.t.Fatalf("copy --json output %q: %v", out, err)
	}
	return c
}

// restoreFrom restores VM:latest's disk 0 from repository loc and compares
// it with img.
func (e *env) restoreFrom(loc, point, img string) {
	e.t.Helper()
	out := filepath.Join(e.dir, "restored.img")
	e.ok("restore", "--repo", loc, point, "--disk", "0", "--to", out, "--force")
	sameFile(e.t, img, out)
}

func (e *env) verifyRepo(loc string) {
	e.t.Helper()
	if r := e.run("verify", "--repo", loc, "--read-data"); r.code != 0 || !strings.Contains(r.stdout, "no errors") {
		e.t.Fatalf("verify %s: %+v", loc, r)
	}
}

// TestCopyCommand: copy between two local repositories with different
// keys and passwords: exit codes, restore and verify from the copy, a
// second copy sends nothing, and an interrupted copy exits 130 leaving no
// point, its rerun sending only the rest.
func TestCopyCommand(t *testing.T) {
	e := newEnv(t)
	e.init()
	off := filepath.Join(e.dir, "off-site")
	toPW, badPW := filepath.Join(e.dir, "to.pw"), filepath.Join(e.dir, "bad.pw")
	for f, pw := range map[string]string{toPW: "another password\n", badPW: "wrong"} {
		if err := os.WriteFile(f, []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(e.dir, "vm1.img")
	p0, p9 := randomBytes(3<<20), randomBytes(2<<20)
	writeImage(t, img, 16<<20, map[int64][]byte{0: p0, 9 << 20: p9})
	e.backupJSON("vm1", img)
	writeImage(t, img, 16<<20, map[int64][]byte{0: p0, 9 << 20: p9, 14 << 20: randomBytes(1 << 20)})
	b2 := e.backupJSON("vm1", img)

	if r := e.run("copy", "--from", e.repo, "--to", off, "--to-password-file", toPW); r.code != exitNoRepository ||
		!strings.Contains(r.stderr, "repo init") {
		t.Errorf("copy to a missing repository: %+v", r)
	}
	e.ok("repo", "init", "--repo", off, "--password-file", toPW)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"wrong target password", []string{"--to-password-file", badPW}, exitWrongPass, "target " + off + ": wrong password"},
		{"wrong source password", []string{"--from-password-file", badPW, "--to-password-file", toPW}, exitWrongPass, "source " + e.repo + ": wrong password"},
		{"missing source", []string{"--from", filepath.Join(e.dir, "nothing"), "--to-password-file", toPW}, exitNoRepository, "source: "},
		{"no target", []string{"--to", ""}, exitUsage, "--to"},
		{"--repo", []string{"--repo", off}, exitUsage, "not --repo"},
	} {
		args := append([]string{"copy", "--from", e.repo, "--to", off}, tc.args...)
		if r := e.run(args...); r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%s: exit %d, want %d with %q: %s", tc.name, r.code, tc.code, tc.msg, r.stderr)
		}
	}

	c := e.copyJSON("--from", e.repo, "--to", off, "--to-password-file", toPW)
	if c.PointsCopied != 2 || c.ChunksSent != 6 || c.ChunksPresent != 5 {
		t.Errorf("copy: %+v, want 2 points, 6 chunks sent and 5 present", c)
	}
	to := newEnvLike(e, "HOLDFAST_PASSWORD=another password")
	to.restoreFrom(off, "vm1:latest", img)
	to.verifyRepo(off)
	var ps []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(to.ok("points", "--repo", off, "--json")), &ps); err != nil || len(ps) != 2 || ps[1].ID != b2.Point {
		t.Errorf("points of the copy: %+v %v", ps, err)
	}
	if again := e.copyJSON("--from", e.repo, "--to", off, "--to-password-file", toPW); again.ChunksSent != 0 || len(again.Skipped) != 2 {
		t.Errorf("second copy: %+v", again)
	}

	// interrupted: a 48 MiB point read at 8 MiB/s, Ctrl-C after 16 MiB
	big := filepath.Join(e.dir, "vm2.img")
	writeImage(t, big, 48<<20, map[int64][]byte{0: randomBytes(48 << 20)})
	e.backupJSON("vm2", big)
	cmd := e.command(context.Background(), "--repo-read-limit", "8MiB", "copy", "--from", e.repo, "--to", off, "--to-password-file", toPW)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	done := startUntil(t, cmd, "16 MiB read", func() bool { return readBytes(cmd) >= 16<<20 })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(exitBound):
		_ = cmd.Process.Kill()
		t.Fatalf("copy still running %v after Ctrl-C", exitBound)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("interrupted copy: exit %d; %s", code, stderr.String())
	}
	if err := json.Unmarshal([]byte(to.ok("points", "--repo", off, "--json")), &ps); err != nil || len(ps) != 2 {
		t.Fatalf("an interrupted copy left a point: %+v %v", ps, err)
	}
	rest := e.copyJSON("--from", e.repo, "--to", off, "--to-password-file", toPW, "--vm", "vm2")
	if rest.PointsCopied != 1 || rest.ChunksPresent == 0 || rest.ChunksSent+rest.ChunksPresent != 48 {
		t.Errorf("rerun after the interrupt: %+v, want some of the 48 chunks present", rest)
	}
	to.restoreFrom(off, "vm2:latest", big)
}

// s3Vars are the variables that reach the test S3 server.
var s3Vars = []string{"AWS_ACCESS_KEY_ID=" + s3test.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3test.SecretKey, "AWS_REGION=us-east-1"}

// TestCopyS3: local to object storage and back; each copy restores and
// verifies alone (the source removed).
func TestCopyS3(t *testing.T) {
	srv := s3test.Start(t)
	e := newEnv(t)
	e.vars = append(e.vars, s3Vars...)
	local, s3, back := filepath.Join(e.dir, "local"), srv.URL("offsite", "vms"), filepath.Join(e.dir, "back")
	e.ok("repo", "init", "--repo", local, "--chunk-size", "256KiB")
	e.ok("repo", "init", "--repo", s3)
	e.ok("repo", "init", "--repo", back)
	img := filepath.Join(e.dir, "vm1.img")
	writeImage(t, img, 8<<20, map[int64][]byte{0: randomBytes(2 << 20), 6 << 20: randomBytes(1 << 20)})
	e.ok("backup", "--repo", local, "--name", "vm1", img)
	if c := e.copyJSON("--from", local, "--to", s3); c.PointsCopied != 1 || c.ChunksSent != 12 {
		t.Fatalf("local to S3: %+v", c)
	}
	if err := os.RemoveAll(local); err != nil {
		t.Fatal(err)
	}
	e.restoreFrom(s3, "vm1:latest", img)
	e.verifyRepo(s3)
	if c := e.copyJSON("--from", s3, "--to", back); c.PointsCopied != 1 || c.ChunksSent != 12 {
		t.Fatalf("S3 to local: %+v", c)
	}
	e.restoreFrom(back, "vm1:latest", img)
	e.verifyRepo(back)
}

// TestCopyDroppingLink: a copy to object storage through a link cut every
// 2 MiB completes, and the copy restores identically.
func TestCopyDroppingLink(t *testing.T) {
	srv := s3test.Start(t)
	proxy, err := cutproxy.Start("127.0.0.1:0", srv.Endpoint, cutproxy.ModeLink, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.Jitter(1)
	e := newEnv(t)
	e.vars = append(e.vars, s3Vars...)
	local := filepath.Join(e.dir, "local")
	e.ok("repo", "init", "--repo", local)
	e.ok("repo", "init", "--repo", srv.URL("offsite", ""))
	img := filepath.Join(e.dir, "vm1.img")
	writeImage(t, img, 24<<20, map[int64][]byte{0: randomBytes(24 << 20)})
	e.ok("backup", "--repo", local, "--name", "vm1", img)
	c := e.copyJSON("--from", local, "--to", "s3+http://"+proxy.Addr()+"/offsite")
	st := proxy.Stats()
	t.Logf("copy through the cutting proxy: %+v; proxy %+v", c, st)
	if c.PointsCopied != 1 || st.Cuts < 5 {
		t.Fatalf("copy %+v through %d cuts, want 1 point and at least 5 cuts", c, st.Cuts)
	}
	e.restoreFrom(srv.URL("offsite", ""), "vm1:latest", img)
	e.verifyRepo(srv.URL("offsite", ""))
}
