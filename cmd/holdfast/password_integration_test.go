package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPasswordSources: a repository made with the password from one source
// opens with the same password from every other, in real processes.
func TestPasswordSources(t *testing.T) {
	e := newEnv(t)
	const secret = "s3cret with spaces"
	pwFile := filepath.Join(e.dir, "pw")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(e.dir, "get pw.sh") // a space: the command is split, not run by a shell
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$1\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	base := []string{"HOLDFAST_TEST_MAIN=1", "HOLDFAST_REPOSITORY=" + e.repo, "HOLDFAST_PASSWORD=",
		"HOLDFAST_PASSWORD_FILE=", "HOLDFAST_PASSWORD_COMMAND="}
	command := "'" + script + "' '" + secret + "'"
	e.vars = append(base, "HOLDFAST_PASSWORD_COMMAND="+command)
	e.init()

	tests := []struct {
		name   string
		vars   []string
		args   []string
		code   int
		stderr string
	}{
		{"password file flag", nil, []string{"--password-file", pwFile}, exitOK, ""},
		{"password command flag", nil, []string{"--password-command", command}, exitOK, ""},
		{"password file variable", []string{"HOLDFAST_PASSWORD_FILE=" + pwFile}, nil, exitOK, ""},
		{"password command variable", []string{"HOLDFAST_PASSWORD_COMMAND=" + command}, nil, exitOK, ""},
		{"password variable", []string{"HOLDFAST_PASSWORD=" + secret}, nil, exitOK, ""},
		{"flag beats variables", []string{"HOLDFAST_PASSWORD_COMMAND=false", "HOLDFAST_PASSWORD=wrong"},
			[]string{"--password-file", pwFile}, exitOK, ""},
		{"file variable beats password variable", []string{"HOLDFAST_PASSWORD_FILE=" + pwFile, "HOLDFAST_PASSWORD=wrong"}, nil, exitOK, ""},
		{"wrong password from a command", nil, []string{"--password-command", "echo wrong"}, exitWrongPass, "wrong password"},
		{"failing command", nil, []string{"--password-command", "sh -c 'echo " + secret + "; exit 7'"}, exitFailure,
			"password command failed: --password-command: exit status 7"},
		{"both flags", nil, []string{"--password-file", pwFile, "--password-command", command}, exitUsage, "not both"},
		{"both variables", []string{"HOLDFAST_PASSWORD_FILE=" + pwFile, "HOLDFAST_PASSWORD_COMMAND=" + command}, nil, exitUsage, "both set"},
		{"empty output", nil, []string{"--password-command", "true"}, exitUsage, "empty password"},
		{"no source, no terminal", nil, nil, exitUsage, "HOLDFAST_PASSWORD_COMMAND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.vars = append(append([]string{}, base...), tc.vars...)
			r := e.run(append([]string{"points"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", r.code, tc.code, r.stderr, tc.stderr)
			}
			if strings.Contains(r.stderr+r.stdout, secret) {
				t.Fatalf("the password (or a command's output) leaked: %+v", r)
			}
		})
	}
}
