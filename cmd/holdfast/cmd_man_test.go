package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestManPages generates the man pages and finds one per command, each
// with its title and synopsis.
func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	var out, errb bytes.Buffer
	root := newRootCommand(strings.NewReader(""), &out, &errb)
	root.SetArgs([]string{"man", "--dir", dir})
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000") // 2023-11-14: pages dated reproducibly
	if err := root.Execute(); err != nil {
		t.Fatalf("man: %v\n%s", err, errb.String())
	}
	pages := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != root {
			return
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("no page for %q: %v", c.CommandPath(), err)
			return
		}
		pages++
		page := string(b)
		if !strings.HasPrefix(page, ".nh\n.TH \"HOLDFAST\" \"1\" \"Nov 2023\"") || !strings.Contains(page, ".SH SYNOPSIS") ||
			!strings.Contains(page, c.Name()) {
			t.Errorf("%s: not a man page of %s:\n%.300s", name, c.CommandPath(), page)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, c := range []string{"holdfast-server.1", "holdfast-backup.1", "holdfast-token-create.1", "holdfast-proxy.1"} {
		if _, err := os.Stat(filepath.Join(dir, c)); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "holdfast-man.1")); err == nil {
		t.Error("the hidden man command has a page")
	}
	t.Logf("%d pages", pages)
	if r := newRootCommand(strings.NewReader(""), &out, &errb); r != nil {
		r.SetArgs([]string{"man"})
		if err := r.Execute(); exitCode(err, false) != exitUsage {
			t.Errorf("man without --dir: %v, want a usage error", err)
		}
	}
}
