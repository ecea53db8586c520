package mover

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
)

// TestHoldVerbs: a point held through the agent is kept by the server's
// retention (DELETE points/{id} answers 409 point_held) until released.
func TestHoldVerbs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{AuthorizeForget: func(*http.Request) error { return nil }})
	c := e.dial(t, e.ts.URL, nil)
	m := backup(t, c, memdisk.Standard(cs), 2)
	h := repo.Hold{Point: m.ID, Holder: "ir-00000001", Who: "proxy p1", Why: "instant recovery"}
	if err := c.HoldPoint(ctx, h); err != nil {
		t.Fatal(err)
	}
	hs, err := e.repo.Holds(ctx)
	if err != nil || len(hs) != 1 || hs[0].Who != h.Who || hs[0].Since.IsZero() {
		t.Fatalf("holds on the agent: %+v %v", hs, err)
	}
	if err := c.ForgetPoint(ctx, m.ID); !errors.Is(err, repo.ErrPointHeld) {
		t.Fatalf("forget a held point: %v, want ErrPointHeld", err)
	}
	if _, err := e.repo.LoadManifest(ctx, m.ID); err != nil {
		t.Fatalf("the held point went: %v", err)
	}
	if err := c.ReleaseHold(ctx, m.ID, h.Holder); err != nil {
		t.Fatal(err)
	}
	if err := c.ReleaseHold(ctx, m.ID, h.Holder); err != nil {
		t.Fatalf("a second release: %v", err)
	}
	if err := c.ForgetPoint(ctx, m.ID); err != nil {
		t.Fatalf("forget after release: %v", err)
	}
	if err := c.HoldPoint(ctx, h); !errors.Is(err, repo.ErrPointNotFound) {
		t.Fatalf("hold a forgotten point: %v, want ErrPointNotFound", err)
	}
	for _, path := range []string{"points/" + m.ID + "/holds/..x", "points/" + m.ID + "/holds/-x"} {
		if st, code, _ := e.request(t, http.MethodPut, APIPrefix+"main/"+path, []byte(`{}`)); st != http.StatusBadRequest {
			t.Errorf("PUT %s: %d %s, want 400", path, st, code)
		}
	}
}
