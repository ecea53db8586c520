package repocopy_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repocopy"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

// agent serves r as a repository agent (the data mover protocol over
// plain HTTP) and returns a client of it.
func agent(t *testing.T, r *repo.Repository) *mover.Client {
	t.Helper()
	srv, err := mover.NewServer(map[string]*repo.Repository{"main": r}, mover.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	c, err := mover.Dial(context.Background(), mover.ClientOptions{URL: ts.URL, Repo: "main", Password: []byte(testrepo.Password),
		HTTP: ts.Client(), Retry: mover.RetryPolicy{Initial: time.Millisecond, Max: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCopyThroughAgents: the engine copies from a local repository to one
// behind a repository agent and from there to another local one; each copy
// restores the source's disks, and the second run sends nothing.
func TestCopyThroughAgents(t *testing.T) {
	ctx := context.Background()
	src, mid, last := testrepo.New(t, nil), testrepo.New(t, nil), testrepo.New(t, nil)
	a1 := randomDisk(20, 5)
	a2 := bytes.Clone(a1)
	copy(a2[cs:], randomDisk(21, 1)[:cs])
	point(t, src, "vm1", t0, a1)
	point(t, src, "vm1", t0.Add(time.Hour), a2)
	remote := agent(t, mid)

	res, err := repocopy.Copy(ctx, src, remote, repocopy.Options{VerifySample: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Stats; s.PointsCopied != 2 || s.ChunksSent != 7 || s.ChunksKnown != 5 {
		t.Errorf("to the agent: %+v", s)
	}
	again, err := repocopy.Copy(ctx, src, remote, repocopy.Options{})
	if err != nil || again.Stats.ChunksSent != 0 || again.Stats.PointsSkipped != 2 {
		t.Errorf("again to the agent: %+v %v", again.Stats, err)
	}
	res, err = repocopy.Copy(ctx, remote, last, repocopy.Options{VerifySample: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Stats; s.PointsCopied != 2 || s.ChunksSent != 7 {
		t.Errorf("from the agent: %+v", s)
	}
	ms := listPoints(t, last)
	if len(ms) != 2 || !bytes.Equal(readDisk(t, last, ms[0], 0), a1) || !bytes.Equal(readDisk(t, last, ms[1], 0), a2) {
		t.Fatal("the copy of the copy does not restore the source's disks")
	}
	if ms[1].CopiedFrom.Repository != mid.Config().ID {
		t.Errorf("copied_from %+v, want the agent's repository %s", ms[1].CopiedFrom, mid.Config().ID)
	}
}
