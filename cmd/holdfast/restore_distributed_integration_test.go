package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// TestDistributedRestoreConfined: restores through the server write only
// beneath the proxy's --restore-root, never through a symbolic link,
// never over an existing file without --force; and a restore whose
// requester went away before a proxy took it is cancelled, not run when a
// proxy comes online.
func TestDistributedRestoreConfined(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := newCluster(t, "")
	dir := c.e.dir
	writeVMDisks(t, dir, 1)
	root := filepath.Join(dir, "restores")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	victim := filepath.Join(outside, "authorized_keys")
	keys := []byte("ssh-ed25519 AAAA... admin@site\n")
	if err := os.WriteFile(victim, keys, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(root, "existing.img")
	old := []byte("a disk the user still needs\n")
	if err := os.WriteFile(existing, old, 0o600); err != nil {
		t.Fatal(err)
	}

	c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 2, "--restore-root", root)
	c.waitAgents("repo1", "proxy1")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The job's password comes from a command (no shell: split into words).
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-command", "cat "+pw, "--vm", vmSpec(dir, "vm1", 2))
	res := c.runJob("nightly")
	checkJobResult(t, res, 1, 2)
	point := res.VMs[0].Point
	want := filepath.Join(dir, "vm1-disk1.img")

	tests := []struct {
		name  string
		ref   string // "": point
		to    string
		force bool
		code  int
		msg   string
		keep  []byte // the target's content that must survive; nil: restored
	}{
		{"outside the restore roots", "", victim, true, exitFailure, "no proxy takes restores", keys},
		{"through a symbolic link inside the root", "", filepath.Join(root, "link", "authorized_keys"), true, exitFailure, "symbolic link", keys},
		{"existing file", "", existing, false, exitFailure, "--force", old},
		{"existing file, --force", "", existing, true, exitOK, "", nil},
		{"new file", "", filepath.Join(root, "new.img"), false, exitOK, "", nil},
		// The server resolves references as a repository does.
		{"VM:latest", "vm1:latest", filepath.Join(root, "latest.img"), false, exitOK, "", nil},
		{"latest", "latest", filepath.Join(root, "any-latest.img"), false, exitOK, "", nil},
		{"unique ID prefix", point[:6], filepath.Join(root, "prefix.img"), false, exitOK, "", nil},
		{"unknown VM", "vm9:latest", filepath.Join(root, "vm9.img"), false, exitFailure, "not found", nil},
		{"unknown prefix", "zz", filepath.Join(root, "zz.img"), false, exitFailure, "not found", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.ref
			if ref == "" {
				ref = point
			}
			args := []string{"restore", ref, "--disk", "1", "--to", tc.to}
			if tc.force {
				args = append(args, "--force")
			}
			r := c.e.run(args...)
			if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.msg) {
				t.Fatalf("exit %d (want %d), output %q %q (want %q)", r.code, tc.code, r.stdout, r.stderr, tc.msg)
			}
			if tc.code == exitOK {
				sameFile(t, tc.to, want)
				return
			}
			if tc.keep == nil {
				if _, err := os.Stat(tc.to); !os.IsNotExist(err) {
					t.Fatalf("a refused restore made %s (%v)", tc.to, err)
				}
				return
			}
			if got, err := os.ReadFile(tc.to); err != nil || !bytes.Equal(got, tc.keep) {
				t.Fatalf("refused restore changed %s (%v)", tc.to, err)
			}
		})
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("files appeared outside the restore root: %v", ents)
	}
	noRestoreTemps(t, root)

	t.Run("requester interrupted before a proxy took it", func(t *testing.T) {
		c.kill(c.procs["proxy1"]) // no proxy takes the restore while its requester waits
		target := filepath.Join(root, "interrupted.img")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := c.e.command(ctx, "restore", point, "--disk", "1", "--to", target)
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		id := c.waitRestoreSession(func(se apitypes.Session) bool { return se.State == "running" })
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		var ee *exec.ExitError
		if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
			t.Fatalf("interrupted restore: %v, stderr %s", err, &stderr)
		}
		c.waitSession(id, func(se sessionTasks) bool { return se.State == "cancelled" })

		// The proxy comes back: the cancelled restore never runs. A new
		// restore after it runs, so the queue has been looked at.
		c.addProxy("proxy1", 2, "--restore-root", root)
		c.waitAgents("proxy1")
		after := filepath.Join(root, "after.img")
		c.e.ok("restore", point, "--disk", "1", "--to", after)
		sameFile(t, after, want)
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Fatalf("the cancelled restore wrote %s (%v)", target, err)
		}
		if se := c.session(id); se.State != "cancelled" {
			t.Errorf("cancelled restore session afterwards: %+v", se)
		}
	})

	t.Run("API client gone before a proxy took it", func(t *testing.T) {
		c.kill(c.procs["proxy1"])
		target := filepath.Join(root, "api-gone.img")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int)
		go func() {
			code, _ := c.apiDo(ctx, "POST", "/api/v1/restores",
				`{"point":"`+point+`","disk":1,"target":"`+target+`"}`)
			done <- code
		}()
		id := c.waitRestoreSession(func(se apitypes.Session) bool { return se.State == "running" })
		cancel()
		<-done
		c.waitSession(id, func(se sessionTasks) bool { return se.State == "cancelled" })
		c.addProxy("proxy1", 2, "--restore-root", root)
		c.waitAgents("proxy1")
		c.e.ok("restore", point, "--disk", "1", "--to", filepath.Join(root, "after-api.img"))
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Fatalf("the cancelled restore wrote %s (%v)", target, err)
		}
	})
}

// waitRestoreSession waits for the newest restore session to satisfy ok
// and returns its ID.
func (c *cluster) waitRestoreSession(ok func(apitypes.Session) bool) int64 {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var ss []apitypes.Session
		if err := json.Unmarshal([]byte(c.e.ok("session", "list", "--json")), &ss); err != nil {
			c.t.Fatal(err)
		}
		for _, se := range ss { // newest first
			if se.Kind == "restore" {
				if ok(se) {
					return se.ID
				}
				break
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no restore session as expected: %+v", ss)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
