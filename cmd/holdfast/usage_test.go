package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runInProcess runs the holdfast command tree with args and returns its
// exit code and output (no repository is touched by these cases).
func runInProcess(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand(strings.NewReader(""), &out, &errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("holdfast: " + err.Error() + "\n")
	}
	return exitCode(err, false), out.String(), errb.String()
}

// TestUnknownSubcommands: a typo at the top level or in any command group
// is a usage error (exit 2) that names the nearest command, not a help page
// and exit 0; a group given no subcommand still shows its help.
func TestUnknownSubcommands(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		suggest string
	}{
		{[]string{"bakup"}, "did you mean backup?"},
		{[]string{"verfy", "--json"}, "did you mean verify?"},
		{[]string{"session", "cancle", "7"}, "did you mean cancel?"},
		{[]string{"job", "delet", "nightly"}, "did you mean delete?"},
		{[]string{"repo", "info"}, "did you mean init?"},
		{[]string{"instant-recovery", "strat", "latest"}, "did you mean start?"},
		{[]string{"holds", "relase"}, "did you mean release?"},
		{[]string{"--repo", "/nonexistent", "pionts"}, "did you mean points?"},
		{[]string{"session", "zzzzzz"}, ""},
		{[]string{"help", "bakup"}, "did you mean backup?"},
		{[]string{"help", "session", "cancle"}, "did you mean cancel?"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runInProcess(t, tc.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, "unknown command") || !strings.Contains(stderr, tc.suggest) {
				t.Fatalf("stderr %q, want %q", stderr, tc.suggest)
			}
			if tc.suggest == "" && strings.Contains(stderr, "did you mean") {
				t.Fatalf("a suggestion for nothing near: %q", stderr)
			}
			if stdout != "" {
				t.Fatalf("help on stdout hides the error: %q", stdout)
			}
		})
	}
	for _, group := range []string{"session", "job", "repo", "instant-recovery"} {
		code, stdout, _ := runInProcess(t, group)
		if code != exitOK || !strings.Contains(stdout, "Available Commands") {
			t.Errorf("%s alone: exit %d, stdout %q; want its help", group, code, stdout)
		}
	}
	for _, args := range [][]string{{"help"}, {"help", "session"}, {"help", "session", "cancel"}, {"session", "--help"}} {
		if code, stdout, _ := runInProcess(t, args...); code != exitOK || !strings.Contains(stdout, "Usage:") {
			t.Errorf("%v: exit %d, stdout %q; want help", args, code, stdout)
		}
	}
}
