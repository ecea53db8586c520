package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/repoagent"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// TestHardenedRepositoryAgent: a repository agent run with --immutable 7
// keeps a backup made through it whatever the server asks with its own
// credentials on the administrator's behalf: retention's forget is
// refused (the VM's warning names the point and the date it becomes
// deletable), a maintenance gc with no grace removes nothing and says why,
// and the data verifies. Where the agent could set the immutable attribute
// (root on ext4), a local forget on the directory exits 8.
func TestHardenedRepositoryAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := newCluster(t, "")
	dir := c.e.dir
	writeVMDisks(t, dir, 1)
	path := filepath.Join(dir, "repo1")
	c.e.ok("repo", "init", "--repo", path)
	// Registered before the agent starts, so it runs after the agent is
	// stopped: nothing immutable is left for the temporary directory's
	// removal.
	t.Cleanup(func() {
		be := storage.NewLocal(path)
		for _, top := range []string{"chunks", "indexes", "points", "scans"} {
			_ = be.List(context.Background(), top, func(fi storage.FileInfo) error { _ = be.SetImmutable(fi.Name, false); return nil })
		}
	})
	tok := strings.TrimSpace(c.e.ok("repository", "token"))
	agentProc := c.proc("repository", "--name", "repo1", "--path", path, "--join-token", tok,
		"--listen", freeAddr(t), "--slots", "2", "--immutable", "7")
	c.procs["repo1"] = agentProc
	c.addProxy("proxy1", 1)
	c.waitAgents("repo1", "proxy1")
	banner := agentProc.out.String()
	if !strings.Contains(banner, "hardened repository: nothing younger than 7 days is deleted or overwritten") {
		t.Fatalf("agent banner: %q", banner)
	}
	attrs := strings.Contains(banner, "files immutable (chattr +i): yes")
	t.Logf("agent: %s", strings.TrimSpace(banner))
	var agents []apitypes.Agent
	if err := json.Unmarshal([]byte(c.e.ok("repository", "list", "--json")), &agents); err != nil || len(agents) != 1 {
		t.Fatalf("repository list: %+v %v", agents, err)
	}
	var caps struct {
		Storage repoagent.StorageStatus `json:"storage"`
	}
	if err := json.Unmarshal(agents[0].Capabilities, &caps); err != nil || caps.Storage.ImmutableDays != 7 ||
		caps.Storage.ImmutableFiles == nil || *caps.Storage.ImmutableFiles != attrs {
		t.Fatalf("the agent's capability report: %s %v", agents[0].Capabilities, err)
	}

	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", pw,
		"--vm", vmSpec(dir, "vm1", 2), "--retention-last", "1")
	first := c.runJobAny("nightly")
	if first.Status != "success" || len(first.VMs) != 1 {
		t.Fatalf("first backup: %+v", first)
	}
	point := first.VMs[0].Point
	second := c.runJobAny("nightly")
	if len(second.VMs) != 1 || second.VMs[0].Point == "" || len(second.VMs[0].Forgotten) != 0 {
		t.Fatalf("second backup: %+v", second)
	}
	until := time.Now().AddDate(0, 0, 7).UTC().Format("2006-01-02")
	warned := strings.Join(second.VMs[0].Warnings, "\n")
	if !strings.Contains(warned, "forget point "+point) || !strings.Contains(warned, "immutable until "+until) {
		t.Fatalf("retention of a point inside the window: warnings %q, want the point %s and the date %s", warned, point, until)
	}

	c.e.ok("job", "create", "maint", "--kind", "maintenance", "--repository", "repo1", "--password-file", pw,
		"--gc", "--gc-grace", "0s", "--verify", "--schedule", "0 4 * * 0")
	out := c.e.run("job", "run", "maint", "--wait", "--json").stdout
	var res struct {
		Status string `json:"status"`
		GC     *struct {
			Removed   int    `json:"removed_chunks"`
			Immutable string `json:"immutable"`
		} `json:"gc"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.GC == nil || res.GC.Removed != 0 ||
		!strings.Contains(res.GC.Immutable, "is kept") {
		t.Fatalf("maintenance gc on the hardened repository: %v\n%s", err, out)
	}

	var points []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(c.e.ok("points", "--repo", path, "--json")), &points); err != nil || len(points) != 2 {
		t.Fatalf("points after forget and gc: %+v %v", points, err)
	}
	if v := c.e.ok("verify", "--repo", path, "--read-data"); !strings.Contains(v, "no errors found") {
		t.Fatalf("verify: %s", v)
	}
	if !attrs {
		t.Log("the agent could not set the immutable attribute here: local forget not checked")
		return
	}
	r := c.e.run("forget", "--repo", path, "--keep-last", "1")
	if r.code != exitImmutable || !strings.Contains(r.stderr, "immutable attribute") {
		t.Fatalf("local forget on the hardened directory: exit %d, want %d\n%s%s", r.code, exitImmutable, r.stdout, r.stderr)
	}
	if v := c.e.ok("verify", "--repo", path); !strings.Contains(v, "no errors found") {
		t.Fatalf("verify after the refused local forget: %s", v)
	}
}
