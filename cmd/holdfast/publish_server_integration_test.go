package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/publish"
	"github.com/holdfast-backup/holdfast/internal/testutil/guestimg"
)

// TestDistributedPublish: publish through the server (real server,
// repository agent and proxy processes): the proxy mounts the point's
// filesystems read-only with chunks from the repository agent; unpublish
// (cancelling the session) takes everything down on the proxy.
func TestDistributedPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	needPublishHost(t)
	c := newCluster(t, "")
	dir := c.e.dir
	guestimg.Build(t, filepath.Join(dir, "vm1-disk0.img"), guestimg.Spec{Label: "gpt", Parts: []guestimg.Part{
		{FS: "ext4", SizeMiB: 16, Files: pubBoot}, {FS: "xfs", SizeMiB: 64, Files: pubRoot}}})
	c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 3)
	c.waitAgents("repo1", "proxy1")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", pw, "--vm", vmSpec(dir, "vm1", 1))
	res := c.runJob("nightly")
	checkJobResult(t, res, 1, 1)
	point := res.VMs[0].Point

	if r := c.e.run("publish", point, "--mount-dir", "relative"); r.code != exitUsage || !strings.Contains(r.stderr, "absolute") {
		t.Errorf("relative --mount-dir: %+v", r)
	}
	mnt := filepath.Join(dir, "mnt")
	out := c.e.ok("publish", point, "--json", "--mount-dir", mnt)
	var s struct {
		publish.Session
		SessionNo int64  `json:"session"`
		Proxy     string `json:"proxy"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("publish --json: %v\n%s", err, out)
	}
	if s.ID != publish.ServerID(s.SessionNo) || s.Proxy != "proxy1" || s.MountDir != mnt || len(s.Filesystems) != 2 {
		t.Fatalf("session: %s", out)
	}
	state := filepath.Join(dir, "state-proxy1", "publish")
	record := filepath.Join(state, s.ID+".json")
	gone := func() bool { _, err := os.Stat(record); return errors.Is(err, os.ErrNotExist) }
	t.Cleanup(func() { // before the proxy is stopped: it undoes everything
		c.e.run("unpublish", s.ID)
		waitFor(t, "the proxy to unpublish", gone)
	})
	for i, files := range []map[string][]byte{pubBoot, pubRoot} {
		mp := s.Filesystems[i].Mountpoint
		for name, want := range files {
			got, err := os.ReadFile(filepath.Join(mp, name))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s/%s: %v (equal: %v)", mp, name, err, bytes.Equal(got, want))
			}
		}
		if err := os.WriteFile(filepath.Join(mp, "new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("write into %s: %v, want EROFS", mp, err)
		}
	}
	if gone() {
		t.Error("the proxy keeps no record of the session")
	}
	if out := c.e.ok("unpublish", s.ID); !strings.Contains(out, "unpublished "+s.ID) {
		t.Errorf("unpublish: %s", out)
	}
	// The proxy removes the record once it has undone everything.
	waitFor(t, "the proxy to unpublish", gone)
	s.PID = 0 // the proxy serves the session and runs on
	assertUnpublished(t, &s.Session, state)
}
