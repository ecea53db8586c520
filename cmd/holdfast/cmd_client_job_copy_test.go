package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
)

// TestCopyJobFlags: --after JOB is the schedule "after JOB" and excludes
// --schedule; the copy flags fill the definition's copy, the target
// password inline (for the server to seal) and the old reference dropped.
func TestCopyJobFlags(t *testing.T) {
	tests := []struct {
		after, schedule string
		changed         []string
		want            string
		usage           bool
	}{
		{"", "0 2 * * *", []string{"schedule"}, "0 2 * * *", false},
		{"nightly", "", []string{"after"}, "after nightly", false},
		{"nightly", "0 2 * * *", []string{"after", "schedule"}, "", true},
		{" ", "", []string{"after"}, "", true},
	}
	for _, tc := range tests {
		f := copyJobFlags{after: tc.after}
		got, err := f.schedule(tc.schedule, changedOf(tc.changed...))
		var ue usageError
		if tc.usage != errors.As(err, &ue) || (!tc.usage && got != tc.want) {
			t.Errorf("after %q schedule %q: %q, %v", tc.after, tc.schedule, got, err)
		}
	}

	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := copyJobFlags{to: "offsite", vms: []string{"web-*"}, newerOnly: true, toPass: pw}
	def := jobdef.Definition{Repository: "repo1", Copy: &jobdef.Copy{ToRepository: "old", ToPasswordSecret: "job/x/to-password-1"}}
	if err := f.apply(context.Background(), &def, changedOf("to-repository", "vms", "newer-only", "to-password-file")); err != nil {
		t.Fatal(err)
	}
	c := def.Copy
	if c.ToRepository != "offsite" || len(c.VMs) != 1 || !c.NewerOnly || c.ToPassword != "battery staple" || c.ToPasswordSecret != "" {
		t.Errorf("copy %+v", *c)
	}
	if err := def.ValidateKind(jobdef.KindCopy); err != nil {
		t.Error(err)
	}
	var none jobdef.Definition
	if err := f.apply(context.Background(), &none, changedOf()); err != nil || none.Copy != nil {
		t.Errorf("no copy flag given: %+v %v", none.Copy, err)
	}
}

// changedOf is a cobra Changed function for the named flags.
func changedOf(names ...string) func(string) bool {
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	return func(n string) bool { return set[n] }
}
