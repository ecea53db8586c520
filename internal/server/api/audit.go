package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// audit records that p did action on target. details must not hold
// secrets. A failure is returned: the change is made but the caller learns
// it was not recorded.
func (s *Server) audit(ctx context.Context, p configdb.Principal, action, target string, details any) error {
	if err := s.store.Audit(ctx, p.Name, action, target, details); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, target, err)
	}
	return nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	n, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	entries, err := s.store.ListAudit(r.Context(), configdb.AuditFilter{
		Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Limit: n,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(entries, viewAudit))
	return nil
}
