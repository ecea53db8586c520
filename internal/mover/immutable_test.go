package mover

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

// TestImmutableAgent: an agent on hardened storage (repo.Immutable)
// refuses to forget a young point to a caller allowed to forget — 423
// immutable, naming the point and the date — and its gc keeps what is
// young; the data stays whole.
func TestImmutableAgent(t *testing.T) {
	ctx := context.Background()
	r := testrepo.New(t, nil)
	hardened := r.WithBackend(repo.NewImmutable(r.Backend(), repo.ImmutableOptions{Window: 7 * 24 * time.Hour, Reason: "7 days"}))
	allow := func(*http.Request) error { return nil }
	e := newEnv(t, hardened, ServerOptions{AuthorizeForget: allow, AuthorizeMaintain: allow})
	c := e.dial(t, e.ts.URL, nil)
	m1 := backup(t, c, memdisk.Standard(cs), 2)
	_ = backup(t, c, memdisk.Standard(2*cs), 2)

	err := c.ForgetPoint(ctx, m1.ID)
	var se *StatusError
	if !errors.Is(err, storage.ErrImmutable) || !errors.As(err, &se) || se.Status != http.StatusLocked ||
		!strings.Contains(se.Message, m1.ID) || !strings.Contains(se.Message, time.Now().AddDate(0, 0, 7).UTC().Format("2006-01-02")) {
		t.Fatalf("forget of a young point: %v, want 423 immutable naming the point and the date", err)
	}
	res, err := c.Maintain(ctx, MaintainRequest{GC: true, Verify: true, ReadData: true})
	if err != nil || res.GCError != "" || res.GC.Removed != 0 || !strings.Contains(res.GC.Immutable, "is kept") {
		t.Fatalf("gc: %+v %v", res, err)
	}
	if res.VerifyError != "" || res.Verify.Points != 2 || len(res.Verify.Problems) != 0 {
		t.Fatalf("verify: %+v %s", res.Verify, res.VerifyError)
	}
}
