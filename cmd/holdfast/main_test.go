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

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// TestMain lets the test binary act as the holdfast command, so tests run
// the real program in real processes (needed to kill -9 a backup).
func TestMain(m *testing.M) {
	if os.Getenv("HOLDFAST_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// env is a test repository and the environment holdfast runs with.
type env struct {
	t    *testing.T
	dir  string
	repo string
	vars []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, repo: filepath.Join(dir, "repo")}
	e.vars = []string{"HOLDFAST_TEST_MAIN=1", "HOLDFAST_REPOSITORY=" + e.repo, "HOLDFAST_PASSWORD=correct horse",
		"STATE_DIRECTORY=" + filepath.Join(dir, "state")} // agents keep their state here, not in /var/lib
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), e.vars...)
	cmd.Dir = e.dir
	return cmd
}

// run runs holdfast and returns its output and exit code.
func (e *env) run(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := e.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs holdfast and fails the test unless it exits 0.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("holdfast %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (e *env) init(extra ...string) {
	e.t.Helper()
	e.ok(append([]string{"repo", "init"}, extra...)...)
}

func (e *env) backupJSON(vm string, sources ...string) backupJSON {
	e.t.Helper()
	var b backupJSON
	out := e.ok(append([]string{"backup", "--json", "--name", vm}, sources...)...)
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		e.t.Fatalf("backup --json output %q: %v", out, err)
	}
	return b
}

func (e *env) points() []apitypes.Point {
	e.t.Helper()
	var ps []apitypes.Point
	if err := json.Unmarshal([]byte(e.ok("points", "--json")), &ps); err != nil {
		e.t.Fatal(err)
	}
	return ps
}

// writeImage creates a sparse raw image: size bytes, with the given
// (offset, data) pieces written.
func writeImage(t *testing.T, path string, size int64, pieces map[int64][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range pieces {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	f, _ := os.Open("/dev/urandom")
	defer f.Close()
	_, _ = f.Read(b)
	return b
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ", a, b)
	}
}
