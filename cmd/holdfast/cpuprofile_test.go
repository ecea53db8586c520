package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartCPUProfile: HOLDFAST_CPUPROFILE names the file a profile of the
// run goes to (gzipped protobuf, as go tool pprof reads); unset, nothing is
// written; a path that cannot be created is a note, not a failure.
func TestStartCPUProfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.pprof")
	for _, tt := range []struct {
		name, env, note string
		file            bool
	}{
		{"unset", "", "", false},
		{"file", path, "", true},
		{"cannot create", filepath.Join(dir, "missing", "cpu.pprof"), "cpu profile:", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			stop := startCPUProfile(func(k string) string {
				if k == "HOLDFAST_CPUPROFILE" {
					return tt.env
				}
				return ""
			}, &stderr)
			stop()
			if !strings.Contains(stderr.String(), tt.note) || (tt.note == "" && stderr.Len() > 0) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.note)
			}
			b, err := os.ReadFile(path)
			if tt.file && (err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b) {
				t.Errorf("profile: %d bytes, %v; want a gzipped profile", len(b), err)
			}
			if !tt.file && tt.env != "" {
				if _, err := os.Stat(tt.env); err == nil {
					t.Errorf("%s written", tt.env)
				}
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the directory, want only the profile", len(entries))
	}
}
