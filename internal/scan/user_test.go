package scan

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the engine drops root only when holdfast has it")
	}
}

// TestEngineRunsUnprivileged: the engine (a fake writing its identity)
// runs as the scan user, not root, with CAP_DAC_READ_SEARCH alone and
// no_new_privs; "root" keeps root.
func TestEngineRunsUnprivileged(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'ClamAV 1.0.0'; exit 0; fi\n" +
		"{ id -u; grep -E '^(CapEff|NoNewPrivs):' /proc/self/status; } > " + dir + "/id\n"
	prog := filepath.Join(dir, "clamscan")
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	want := "65534"
	if u, err := user.Lookup("clamav"); err == nil {
		want = u.Uid
	} else if u, err := user.Lookup("nobody"); err == nil {
		want = u.Uid
	}
	tests := []struct {
		user, uid, capEff string
		nnp               bool
	}{
		{"", want, "0000000000000004", true},
		{"nobody", "65534", "0000000000000004", true},
		{"65534", "65534", "0000000000000004", true},
		{"root", "0", "", false},
	}
	for _, tc := range tests {
		t.Run("user="+tc.user, func(t *testing.T) {
			if err := os.RemoveAll(filepath.Join(dir, "id")); err != nil { // another user's
				t.Fatal(err)
			}
			e, err := New(ctx, Options{Program: prog, ClamAVDB: testDB(t), User: tc.user})
			if err != nil {
				t.Fatal(err)
			}
			if rep, err := e.Scan(ctx, []Target{{Name: "d", Root: t.TempDir()}}); err != nil || rep.Result != repo.ScanClean {
				t.Fatalf("%+v %v", rep, err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "id"))
			if err != nil {
				t.Fatal(err)
			}
			f := strings.Fields(string(b)) // uid CapEff: X NoNewPrivs: N
			if len(f) != 5 || f[0] != tc.uid {
				t.Fatalf("engine identity %q, want uid %s", b, tc.uid)
			}
			if tc.capEff != "" && f[2] != tc.capEff {
				t.Errorf("CapEff %s, want %s (CAP_DAC_READ_SEARCH only)", f[2], tc.capEff)
			}
			if tc.capEff == "" && f[2] == "0000000000000004" {
				t.Errorf("root engine CapEff %s", f[2])
			}
			if tc.nnp && f[4] != "1" {
				t.Errorf("NoNewPrivs %s", f[4])
			}
		})
	}
	if _, err := New(ctx, Options{Program: prog, ClamAVDB: testDB(t), User: "no-such-user-holdfast"}); err == nil ||
		!strings.Contains(err.Error(), "not scanned") {
		t.Fatalf("unknown user: %v", err)
	}
}

// TestEngineReadsRootOnlyFiles: the real clamscan, running as the scan
// user, still finds EICAR in a 0600 root file inside a 0700 root
// directory (as a published guest filesystem has them).
func TestEngineReadsRootOnlyFiles(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	for _, engine := range []string{ClamScan, Yara} {
		t.Run(engine, func(t *testing.T) {
			e, err := New(ctx, realEngineOptions(t, engine))
			if err != nil {
				t.Fatal(err)
			}
			if e.cred == nil || e.cred.Uid == 0 {
				t.Fatalf("engine runs as root: %+v", e.cred)
			}
			root := t.TempDir()
			sub := filepath.Join(root, "root")
			if err := os.Mkdir(sub, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(sub, "eicar.com"), []byte(Eicar), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(root, 0o700); err != nil {
				t.Fatal(err)
			}
			rep, err := e.Scan(ctx, []Target{{Name: "disk0-p1", Root: root}})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Result != repo.ScanInfected || len(rep.Findings) != 1 || rep.Findings[0].Path != "/root/eicar.com" {
				t.Fatalf("report %+v", rep)
			}
		})
	}
}
