package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// unitDir holds the systemd units shipped with Holdfast.
const unitDir = "../../dist/systemd"

// unitInstances names each unit and the instance its test uses.
var unitInstances = map[string]string{
	"holdfast-server.service":      "",
	"holdfast-proxy@.service":      "proxy1",
	"holdfast-repository@.service": "repo1",
	"holdfast-instant@.service":    "ir-0a1b2c3d",
}

// TestSystemdUnitsRunRealCommands checks that every unit is Type=notify and
// that its ExecStart is a holdfast command line whose command, flags and
// arguments the CLI accepts.
func TestSystemdUnitsRunRealCommands(t *testing.T) {
	vars := map[string]string{"HOLDFAST_LISTEN": "0.0.0.0:8443", "HOLDFAST_REPOSITORY_PATH": "/srv/repo",
		"HOLDFAST_POINT": "web1:latest"}
	braced := regexp.MustCompile(`\$\{(\w+)\}`)
	bare := regexp.MustCompile(`\$\w+`)
	for unit, instance := range unitInstances {
		b, err := os.ReadFile(filepath.Join(unitDir, unit))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if !strings.Contains(text, "\nType=notify\n") {
			t.Errorf("%s: not Type=notify", unit)
		}
		var exec string
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "ExecStart=") {
				exec = strings.TrimPrefix(line, "ExecStart=")
			}
		}
		exec = strings.NewReplacer("%i", instance, "%d", "/run/credentials/x").Replace(exec)
		exec = braced.ReplaceAllStringFunc(exec, func(v string) string { return vars[v[2:len(v)-1]] })
		exec = bare.ReplaceAllString(exec, "") // the *_OPTS of the environment file: empty here
		args := strings.Fields(exec)
		if len(args) < 2 || args[0] != "/usr/bin/holdfast" {
			t.Errorf("%s: ExecStart %q does not run /usr/bin/holdfast", unit, exec)
			continue
		}
		root := newRootCommand(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		c, rest, err := root.Find(args[1:])
		if err == nil && c == root {
			err = os.ErrNotExist
		}
		if err == nil {
			err = c.ParseFlags(rest)
		}
		if err == nil {
			err = c.ValidateArgs(c.Flags().Args())
		}
		if err != nil {
			t.Errorf("%s: ExecStart %q: %v", unit, exec, err)
		}
	}
}

// TestSystemdUnitsVerify runs systemd-analyze verify on every unit (an
// instance of each template), with the test binary standing in for
// /usr/bin/holdfast; any message fails the test.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the units are not verified")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for unit, instance := range unitInstances {
		b, err := os.ReadFile(filepath.Join(unitDir, unit))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/usr/bin/holdfast", self)
		if err := os.WriteFile(filepath.Join(dir, unit), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		name := unit
		if instance != "" {
			name = strings.Replace(unit, "@.", "@"+instance+".", 1)
			if err := os.Symlink(unit, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		paths = append(paths, filepath.Join(dir, name))
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
