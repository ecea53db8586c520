package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProgressOnTerminal runs a backup under a pseudo-terminal (script(1))
// and expects a progress bar with rate and ETA; without a terminal, a
// short backup prints no progress noise.
func TestProgressOnTerminal(t *testing.T) {
	needTools(t, "script")
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	img := filepath.Join(e.dir, "a.img")
	writeImage(t, img, 8<<20, map[int64][]byte{0: pseudoRandom(9, 8<<20)})
	cmdline := "stty cols 120 rows 40; " + os.Args[0] + " backup --name vmp --read-limit 8MiB " + img
	cmd := exec.Command("script", "-qec", cmdline, "/dev/null")
	cmd.Env = append(os.Environ(), e.vars...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "ETA") || !strings.Contains(s, "MiB/s") || !strings.Contains(s, "backup vmp") {
		t.Fatalf("no progress bar on a terminal after %s:\n%q", time.Since(start), s)
	}
	r := e.run("backup", "--name", "vmp", img)
	if r.code != 0 || strings.Contains(r.stderr, "ETA") {
		t.Fatalf("non-terminal output: %+v", r)
	}
}

// TestPasswordPrompt answers the interactive password prompts through a
// pseudo-terminal: init asks twice, a wrong answer later gives exit 4.
func TestPasswordPrompt(t *testing.T) {
	needTools(t, "script")
	e := newEnv(t)
	env := []string{"HOLDFAST_TEST_MAIN=1", "HOLDFAST_REPOSITORY=" + e.repo, "HOLDFAST_PASSWORD="}
	run := func(input, args string) (string, int) {
		cmd := exec.Command("script", "-qec", os.Args[0]+" "+args, "/dev/null")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(input)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := run("typed secret\ntyped secret\n", "repo init"); code != 0 || !strings.Contains(out, "Repeat password") {
		t.Fatalf("init with prompt: exit %d\n%s", code, out)
	}
	// (The pseudo-terminal may echo the input before holdfast turns echo
	// off, so the output is not checked for the secret here.)
	if out, code := run("typed secret\n", "points"); code != 0 || !strings.Contains(out, "ID  VM") {
		t.Fatalf("points with prompt: exit %d\n%s", code, out)
	}
	if out, code := run("wrong\n", "points"); code != exitWrongPass || !strings.Contains(out, "wrong password") {
		t.Fatalf("wrong password at the prompt: exit %d\n%s", code, out)
	}
}
