package mover

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
)

// TestMaintain: POST maintenance runs gc and verify on the agent's
// repository for a caller AuthorizeMaintain allows, and is refused (403)
// to any other caller and by an agent without the hook.
func TestMaintain(t *testing.T) {
	ctx := context.Background()
	refuse := errors.New("not the server")
	allowed := true
	e := newEnv(t, nil, ServerOptions{
		AuthorizeForget: func(*http.Request) error { return nil },
		AuthorizeMaintain: func(*http.Request) error {
			if !allowed {
				return refuse
			}
			return nil
		}})
	c := e.dial(t, e.ts.URL, nil)
	m1 := backup(t, c, memdisk.Standard(cs), 2)
	_ = backup(t, c, memdisk.Standard(2*cs), 2)
	if err := c.ForgetPoint(ctx, m1.ID); err != nil {
		t.Fatal(err)
	}
	res, err := c.Maintain(ctx, MaintainRequest{GC: true, Verify: true, ReadData: true, ReadDataPart: 0, ReadDataOf: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.GC == nil || res.GCError != "" || res.GC.Referenced == 0 {
		t.Fatalf("gc result %+v (%s)", res.GC, res.GCError)
	}
	if res.Verify == nil || res.VerifyError != "" || res.Verify.Points != 1 || res.Verify.Subset != "1/2" || len(res.Verify.Problems) != 0 {
		t.Fatalf("verify result %+v (%s)", res.Verify, res.VerifyError)
	}
	allowed = false
	var se *StatusError
	if _, err := c.Maintain(ctx, MaintainRequest{GC: true}); !errors.As(err, &se) || se.Status != http.StatusForbidden {
		t.Fatalf("maintenance by a refused caller: %v, want 403", err)
	}
	if st, _, _ := e.request(t, http.MethodPost, APIPrefix+"main/maintenance", []byte(`{}`)); st != http.StatusForbidden {
		t.Errorf("refused caller, empty request: %d, want 403", st)
	}

	bare := newEnv(t, nil, ServerOptions{})
	if st, code, _ := bare.request(t, http.MethodPost, APIPrefix+"main/maintenance", []byte(`{"gc":true}`)); st != http.StatusForbidden {
		t.Errorf("agent without the hook: %d %s, want 403", st, code)
	}
}
