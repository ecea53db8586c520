package mover

import (
	"fmt"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// holdRequest is the body of PUT points/{point}/holds/{holder}.
type holdRequest struct {
	Who string `json:"who"`
	Why string `json:"why"`
}

// maxHoldText bounds the who and why of a hold.
const maxHoldText = 1024

// putHold: PUT points/{point}/holds/{holder}. Records a hold on a point
// (repo.PutHold): forget, retention and gc keep the point and its chunks
// until the hold is released. A mount server (proxy) serving the point for
// Instant VM Recovery takes one. 404 point_not_found if the point is gone.
func (s *Server) putHold(w http.ResponseWriter, r *http.Request, rp *served) error {
	point, holder := r.PathValue("point"), r.PathValue("holder")
	if !pointPattern.MatchString(point) {
		return badRequest(fmt.Errorf("invalid point id %q", point))
	}
	if err := repo.ValidateHolder(holder); err != nil {
		return badRequest(err)
	}
	body, err := readBody(w, r, maxSessionBody)
	if err != nil {
		return err
	}
	var req holdRequest
	if err := decodeJSON(body, &req); err != nil || len(req.Who) > maxHoldText || len(req.Why) > maxHoldText {
		return badRequest(fmt.Errorf("hold request: want {\"who\": …, \"why\": …} of at most %d bytes each", maxHoldText))
	}
	ctx, cancel := detached(r.Context())
	defer cancel()
	h := repo.Hold{Point: point, Holder: holder, Who: req.Who, Why: req.Why} // since now, on the repository's clock
	if err := rp.r.HoldPoint(ctx, h); err != nil {
		return err
	}
	s.log.Info("mover point held", "repo", rp.name, "point", point, "holder", holder)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// releaseHold: DELETE points/{point}/holds/{holder}. Removes a hold; one
// that is not there is not an error (a retried release).
func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request, rp *served) error {
	point, holder := r.PathValue("point"), r.PathValue("holder")
	if !pointPattern.MatchString(point) {
		return badRequest(fmt.Errorf("invalid point id %q", point))
	}
	if err := repo.ValidateHolder(holder); err != nil {
		return badRequest(err)
	}
	ctx, cancel := detached(r.Context())
	defer cancel()
	if err := rp.r.ReleaseHold(ctx, point, holder); err != nil {
		return err
	}
	s.log.Info("mover hold released", "repo", rp.name, "point", point, "holder", holder)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
