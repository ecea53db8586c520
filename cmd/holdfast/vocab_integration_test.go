package main

import (
	"encoding/json"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// deadServer is a server URL where nothing listens (a port just closed).
func deadServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "https://" + addr
}

// TestRepositoryOrServer: the flags choose between the repository and the
// server; with only the environment, HOLDFAST_REPOSITORY wins and, when
// HOLDFAST_SERVER is set too, a note says so.
func TestRepositoryOrServer(t *testing.T) {
	e := newEnv(t)
	e.init()
	server := deadServer(t)
	to := filepath.Join(e.dir, "out.img")
	const note = "HOLDFAST_REPOSITORY and HOLDFAST_SERVER are both set: using the repository"
	tests := []struct {
		name     string
		vars     []string
		args     []string
		code     int
		stderr   string
		noteWant bool
	}{
		{"repository only", nil, nil, exitFailure, "restore point not found", false},
		{"both variables: the repository, with a note", []string{"HOLDFAST_SERVER=" + server}, nil, exitFailure, "restore point not found", true},
		{"--server wins over HOLDFAST_REPOSITORY", nil, []string{"--server", server}, exitFailure, "cannot reach the server", false},
		{"--repo wins over HOLDFAST_SERVER", []string{"HOLDFAST_SERVER=" + server}, []string{"--repo", e.repo}, exitFailure, "restore point not found", false},
		{"--repo and --server", nil, []string{"--repo", e.repo, "--server", server}, exitUsage, "not both", false},
		{"server only", []string{"HOLDFAST_REPOSITORY=", "HOLDFAST_SERVER=" + server}, nil, exitFailure, "cannot reach the server", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			saved := e.vars
			defer func() { e.vars = saved }()
			e.vars = append(append([]string{}, e.vars...), tc.vars...)
			for _, cmd := range [][]string{{"restore", "deadbeef", "--to", to}, {"instant-recovery", "list"}} {
				r := e.run(append(cmd, tc.args...)...)
				if cmd[0] == "restore" && (r.code != tc.code || !strings.Contains(r.stderr, tc.stderr)) {
					t.Fatalf("%v: exit %d (want %d), stderr %q (want %q)", cmd, r.code, tc.code, r.stderr, tc.stderr)
				}
				if got := strings.Count(r.stderr, note); got != map[bool]int{true: 1}[tc.noteWant] {
					t.Fatalf("%v: the note appears %d times in %q", cmd, got, r.stderr)
				}
			}
		})
	}
}

// TestServerPathsMustBeAbsolute: paths a proxy opens are refused when
// relative (exit 2, naming the flag), before anything reaches the server.
func TestServerPathsMustBeAbsolute(t *testing.T) {
	e := newEnv(t)
	e.vars = append(e.vars, "HOLDFAST_REPOSITORY=", "HOLDFAST_SERVER="+deadServer(t))
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"restore", "latest", "--to", "out.img"}, `--to "out.img"`},
		{[]string{"restore", "latest", "--to", "./d/out.qcow2"}, "give an absolute path"},
		{[]string{"job", "create", "j", "--repository", "r", "--vm", "vm1=images/a.img"}, `--vm "vm1=images/a.img"`},
		{[]string{"job", "create", "j", "--repository", "r", "--vm", "vm1=/a.img,b.img"}, "relative path"},
		{[]string{"job", "edit", "j", "--vm", "vm1=nbd+unix:///x?socket=nbd.sock"}, "give an absolute path"},
	}
	for _, tc := range tests {
		r := e.run(tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.msg) || strings.Contains(r.stderr, "cannot reach") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %q", tc.args, r.code, r.stderr, tc.msg)
		}
	}
}

// TestJSONReports: forget, restore (and rollback) and gc print JSON with
// --json, snake_case keys, parsed here.
func TestJSONReports(t *testing.T) {
	e := newEnv(t)
	var created map[string]any
	if err := json.Unmarshal([]byte(e.ok("repo", "init", "--json")), &created); err != nil || created["location"] != e.repo ||
		len(created["id"].(string)) == 0 || created["chunk_size"].(float64) != 1<<20 || created["encryption"] == "none" {
		t.Fatalf("repo init --json: %v %v", created, err)
	}
	img := filepath.Join(e.dir, "a.img")
	var ids []string
	for i := 0; i < 3; i++ {
		writeImage(t, img, 4<<20, map[int64][]byte{0: randomBytes(1 << 20)})
		ids = append(ids, e.backupJSON("vm1", img).Point)
	}
	decode := func(out string, v any) {
		t.Helper()
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
	}

	var dry forgetJSON
	decode(e.ok("forget", "--keep-last", "1", "--dry-run", "--json"), &dry)
	action := map[string]string{}
	for _, p := range dry.Points {
		action[p.ID] = p.Action
		if p.Time.IsZero() || (p.Action == "keep") != (len(p.Reasons) > 0) {
			t.Errorf("forget --dry-run --json point: %+v", p)
		}
	}
	if !dry.DryRun || dry.Removed != 2 || len(dry.Points) != 3 || action[ids[0]] != "remove" || action[ids[1]] != "remove" ||
		action[ids[2]] != "keep" {
		t.Fatalf("forget --dry-run --json: %+v", dry)
	}
	if len(e.points()) != 3 {
		t.Fatal("a dry run removed points")
	}
	var fg forgetJSON
	decode(e.ok("forget", "--keep-last", "1", "--json"), &fg)
	if fg.DryRun || fg.Removed != 2 || len(e.points()) != 1 {
		t.Fatalf("forget --json: %+v", fg)
	}

	var gc struct {
		DryRun bool `json:"dry_run"`
		repo.GCResult
	}
	decode(e.ok("gc", "--json", "--grace", "0s", "--dry-run"), &gc)
	if !gc.DryRun || gc.Removed != 2 {
		t.Fatalf("gc --dry-run --json: %+v", gc)
	}

	out := filepath.Join(e.dir, "out.img")
	var rs restoreJSON
	decode(e.ok("restore", "latest", "--to", out, "--json"), &rs)
	if rs.Point != ids[2] || rs.VM != "vm1" || rs.To != out || rs.Format != "raw" || rs.Rollback || rs.BytesWritten != 1<<20 ||
		rs.Time.IsZero() {
		t.Fatalf("restore --json: %+v", rs)
	}
	sameFile(t, img, out)
	var rb restoreJSON
	decode(e.ok("restore", "latest", "--to", out, "--rollback", "--json"), &rb)
	if !rb.Rollback || rb.ChunksCompared != 4 || rb.ChunksWritten != 0 {
		t.Fatalf("restore --rollback --json: %+v", rb)
	}
	// Every key is snake_case.
	for _, raw := range []string{e.ok("forget", "--keep-last", "1", "--json"), e.ok("gc", "--json"),
		e.ok("restore", ids[2][:8], "--to", out, "--force", "--json")} {
		for _, k := range regexp.MustCompile(`"([^"]+)":`).FindAllStringSubmatch(raw, -1) {
			if !regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`).MatchString(k[1]) {
				t.Errorf("key %q is not snake_case in %s", k[1], raw)
			}
		}
	}
}
