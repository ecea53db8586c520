package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestBuildVersion: the -X release wins, then a module version; a source
// build is "dev"; the commit and its dirty state come from the VCS stamp.
func TestBuildVersion(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "8c30018abcdef"},
		{Key: "vcs.time", Value: "2026-12-02T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		name    string
		release string
		bi      *debug.BuildInfo
		want    versionInfo
		text    []string
	}{
		{"release", "v1.2.3", stamped, versionInfo{Version: "v1.2.3", Commit: "8c30018abcdef", Modified: true,
			CommitTime: "2026-12-02T10:00:00Z", Go: "go1.26.8"},
			[]string{"holdfast v1.2.3\n", "commit: 8c30018abcdef (2026-12-02T10:00:00Z), with uncommitted changes\n", "go: go1.26.8 "}},
		{"source tree", "", stamped, versionInfo{Version: devVersion, Commit: "8c30018abcdef", Modified: true,
			CommitTime: "2026-12-02T10:00:00Z", Go: "go1.26.8"}, []string{"holdfast dev\n"}},
		{"go install", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"}},
			versionInfo{Version: "v0.4.0", Go: "go1.26.8"}, []string{"holdfast v0.4.0\n"}},
		{"no build info", "", nil, versionInfo{Version: devVersion, Go: runtime.Version()}, []string{"holdfast dev\n", "go: " + runtime.Version()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := buildVersion(tc.release, tc.bi)
			tc.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
			if got != tc.want {
				t.Fatalf("%+v, want %+v", got, tc.want)
			}
			for _, s := range tc.text {
				if !strings.Contains(got.String(), s) {
					t.Errorf("text %q lacks %q", got.String(), s)
				}
			}
			if tc.want.Commit == "" && strings.Contains(got.String(), "commit") {
				t.Errorf("a commit line without a commit: %q", got.String())
			}
		})
	}
}

// TestVersionCommand builds the real binary with a release version set by
// -ldflags -X and checks `version`, `--version` and `version --json`.
func TestVersionCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "holdfast")
	build := exec.Command(goTool, "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cannot build the binary here: %v\n%s", err, out)
	}
	run := func(args ...string) string {
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("holdfast %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	want := "holdfast v9.8.7-test\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if out := run(args...); !strings.HasPrefix(out, want) || !strings.Contains(out, "go: "+runtime.Version()) {
			t.Errorf("holdfast %s: %q, want %q and the Go version", args[0], out, want)
		}
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(run("version", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != "v9.8.7-test" || v.Go != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("version --json: %+v", v)
	}
}
