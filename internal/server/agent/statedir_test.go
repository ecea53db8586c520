package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDefaultStateDir(t *testing.T) {
	tests := []struct {
		name string
		env  StateEnv
		want string
	}{
		{"root", StateEnv{UID: 0, Home: "/root"}, "/var/lib/holdfast/proxy-p1"},
		{"systemd unit", StateEnv{UID: 0, StateDirectory: "/var/lib/hf:/var/lib/other"}, "/var/lib/hf/proxy-p1"},
		{"systemd unit, user", StateEnv{UID: 1000, Home: "/home/u", StateDirectory: "/st"}, "/st/proxy-p1"},
		{"root, XDG ignored", StateEnv{UID: 0, Home: "/root", XDGStateHome: "/root/.state"}, "/var/lib/holdfast/proxy-p1"},
		{"root, other system dir", StateEnv{UID: 0, SystemDir: "/srv/hf"}, "/srv/hf/proxy-p1"},
		{"user", StateEnv{UID: 1000, Home: "/home/u"}, "/home/u/.local/state/holdfast/proxy-p1"},
		{"user with XDG", StateEnv{UID: 1000, Home: "/home/u", XDGStateHome: "/home/u/st"}, "/home/u/st/holdfast/proxy-p1"},
		{"user, relative XDG ignored", StateEnv{UID: 1000, Home: "/home/u", XDGStateHome: "st"}, "/home/u/.local/state/holdfast/proxy-p1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DefaultStateDir("proxy", "p1", tc.env)
			if err != nil || got != tc.want {
				t.Fatalf("DefaultStateDir = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := DefaultStateDir("proxy", "p1", StateEnv{UID: 1000}); err == nil {
		t.Fatal("a user without a home directory got a default")
	}
}

func TestChooseStateDir(t *testing.T) {
	dir := t.TempDir()
	def, old, other := filepath.Join(dir, "new"), filepath.Join(dir, "old"), filepath.Join(dir, "other")
	withState := func(d string) {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, CertFile), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got, notice := ChooseStateDir(def, old, other); got != def || notice != "" {
		t.Fatalf("nothing anywhere: %q %q, want the default", got, notice)
	}
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	if got, _ := ChooseStateDir(def, old); got != def {
		t.Fatalf("an empty old directory was chosen: %q", got)
	}
	withState(other)
	got, notice := ChooseStateDir(def, old, other)
	if got != other || notice == "" {
		t.Fatalf("old state: %q %q, want %s and a notice", got, notice, other)
	}
	withState(def)
	if got, notice := ChooseStateDir(def, old, other); got != def || notice != "" {
		t.Fatalf("state in both: %q %q, want the default", got, notice)
	}
}
