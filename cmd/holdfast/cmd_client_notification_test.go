package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/spf13/pflag"
)

// TestNotifyFlag: --notify sets the rules (default results), ” clears
// them, a bad result is a usage error.
func TestNotifyFlag(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		want  []jobdef.Notify
		usage bool
	}{
		{[]string{"--notify", "ops"}, []jobdef.Notify{{Target: "ops"}}, false},
		{[]string{"--notify", "ops:success", "--notify", "chat:failure,warning"},
			[]jobdef.Notify{{Target: "ops", On: []string{"success"}}, {Target: "chat", On: []string{"failure", "warning"}}}, false},
		{[]string{"--notify", ""}, nil, false},
		{[]string{"--notify", "ops:failed"}, nil, true},
		{[]string{"--notify", "ops", "--notify", "ops"}, nil, true},
	} {
		var f jobFlags
		fs := pflag.NewFlagSet("job", pflag.ContinueOnError)
		f.register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		def := jobdef.Definition{VMs: []jobdef.VM{{Name: "vm1", Disks: []string{"/a.img"}}}, Repository: "r",
			Notify: []jobdef.Notify{{Target: "old"}}}
		err := f.apply(&def, "backup", fs.Changed)
		var ue usageError
		if tc.usage {
			if !errors.As(err, &ue) {
				t.Errorf("%v: error %v, want a usage error", tc.args, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(def.Notify, tc.want) {
			t.Errorf("%v: %+v %v, want %+v", tc.args, def.Notify, err, tc.want)
		}
	}
}

// TestNotificationAddRequest: the secret comes from the file or the
// environment, never a flag value; flags of the other kind are refused.
func TestNotificationAddRequest(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envSMTPPassword: "env-pw", envWebhookSecret: "env-key"}
	a := &app{getenv: func(k string) string { return env[k] }}
	for _, tc := range []struct {
		kind   string
		args   []string
		secret string
		usage  bool
	}{
		{"smtp", []string{"--host", "h", "--from", "a@b.c", "--to", "d@e.f"}, "env-pw", false},
		{"smtp", []string{"--host", "h", "--password-file", pwFile}, "file-secret", false},
		{"webhook", []string{"--url", "https://h/x"}, "env-key", false},
		{"webhook", []string{"--url", "https://h/x", "--secret-file", pwFile}, "file-secret", false},
		{"webhook", []string{"--url", "https://h/x", "--host", "h"}, "", true},
		{"smtp", []string{"--url", "https://h/x"}, "", true},
		{"sms", nil, "", true},
	} {
		var f notificationFlags
		fs := pflag.NewFlagSet("add", pflag.ContinueOnError)
		f.register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		req, err := f.request(a, tc.kind, "n", fs.Changed)
		var ue usageError
		if tc.usage {
			if !errors.As(err, &ue) {
				t.Errorf("%s %v: error %v, want a usage error", tc.kind, tc.args, err)
			}
			continue
		}
		if err != nil || req.Secret != tc.secret || req.Kind != tc.kind {
			t.Errorf("%s %v: %+v %v", tc.kind, tc.args, req, err)
		}
	}
}
