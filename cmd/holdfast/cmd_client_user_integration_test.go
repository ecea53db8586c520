package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// TestUserCommands adds, lists, changes and removes console users with the
// CLI; passwords come from files, never argv, and never show in output.
func TestUserCommands(t *testing.T) {
	s := startTestServer(t)
	admin := clientEnv(t, s, s.admin)
	const pw, pw2 = "alice-Secret-pw-1", "alice-Secret-pw-2"
	pwFile, pw2File, short := filepath.Join(admin.dir, "pw"), filepath.Join(admin.dir, "pw2"), filepath.Join(admin.dir, "short")
	for f, v := range map[string]string{pwFile: pw + "\n", pw2File: pw2, short: "short\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out := admin.ok("user", "add", "alice", "--role", "viewer", "--password-file", pwFile); out != "added user alice (viewer)\n" {
		t.Fatalf("user add: %q", out)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"user", "add", "bob", "--role", "monitor", "--password-file", pwFile}, exitUsage},
		{[]string{"user", "add", "bob", "--role", "viewer"}, exitUsage}, // no terminal to prompt on
		{[]string{"user", "add", "--role", "viewer", "--password-file", pwFile}, exitUsage},
		{[]string{"user", "add", "bob", "--role", "viewer", "--password-file", filepath.Join(admin.dir, "missing")}, exitFailure},
	} {
		if r := admin.run(tc.args...); r.code != tc.want {
			t.Errorf("%v: exit %d, want %d: %s", tc.args, r.code, tc.want, r.stderr)
		}
	}
	if r := admin.run("user", "add", "bob", "--role", "viewer", "--password-file", short); r.code != exitFailure ||
		!strings.Contains(r.stderr, "at least 12 characters") {
		t.Fatalf("short password: exit %d %s", r.code, r.stderr)
	}
	if r := admin.run("user", "add", "alice", "--role", "viewer", "--password-file", pwFile); r.code == 0 ||
		!strings.Contains(r.stderr, "a user named alice already exists") {
		t.Fatalf("duplicate: exit %d %s", r.code, r.stderr)
	}
	out := admin.ok("user", "totp", "alice")
	if !strings.HasPrefix(out, "otpauth://totp/Holdfast:alice?") || !strings.Contains(out, "\nsecret: ") {
		t.Fatalf("user totp: %q", out)
	}
	var users []apitypes.User
	if err := json.Unmarshal([]byte(admin.ok("user", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Name != "alice" || users[0].Role != "viewer" || !users[0].TOTP {
		t.Fatalf("user list: %+v", users)
	}
	if out := admin.ok("user", "list"); !strings.Contains(out, "alice") || !strings.Contains(out, "yes") {
		t.Fatalf("user list:\n%s", out)
	}
	admin.ok("user", "totp", "alice", "--disable")
	admin.ok("user", "passwd", "alice", "--password-file", pw2File)
	viewer := clientEnv(t, s, s.createToken(t, "v", "viewer"))
	if r := viewer.run("user", "list"); r.code == 0 || !strings.Contains(r.stderr, "your role may not list users") {
		t.Fatalf("viewer user list: exit %d %s", r.code, r.stderr)
	}
	if out := admin.ok("user", "remove", "alice"); out != "removed user alice\n" {
		t.Fatalf("user remove: %q", out)
	}
	if r := admin.run("user", "remove", "alice"); r.code == 0 {
		t.Fatal("removing a missing user succeeded")
	}
	if out := admin.ok("user", "list"); strings.Contains(out, "alice") {
		t.Fatalf("alice still listed:\n%s", out)
	}
	for _, r := range []string{admin.ok("user", "list", "--json"), admin.ok("user", "list")} {
		if strings.Contains(r, pw) || strings.Contains(r, "argon2") {
			t.Fatal("a password or hash in the output")
		}
	}
}
