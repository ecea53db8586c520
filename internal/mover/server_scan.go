package mover

import (
	"errors"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// maxScanBody bounds a sealed scan record (its plain size is bounded by
// the repository, 4 MiB; sealing adds a header and a tag).
const maxScanBody = 4<<20 + 64<<10

// putScan: PUT points/{point}/scans/{engine}, a scan record sealed with
// the repository key (repo.SealScan). Needs Access.RecordScans. The agent
// opens it (it must be the scan record of exactly that point and engine:
// 422 corrupt otherwise), checks that the point exists (404
// point_not_found) and stores it only if the point has no record of that
// engine (409 scan_exists; the same blob again is 204, a retried request).
func (s *Server) putScan(w http.ResponseWriter, r *http.Request, rp *served) error {
	if !accessOf(r).RecordScans {
		return newAPIError(http.StatusForbidden, codeForbidden, "this client may not record scans")
	}
	point, engine := r.PathValue("point"), r.PathValue("engine")
	if err := repo.CheckScanNames(point, engine); err != nil {
		return badRequest(err)
	}
	blob, err := readBody(w, r, maxScanBody)
	if err != nil {
		return err
	}
	ctx, cancel := detached(r.Context())
	defer cancel()
	rec, err := rp.r.PutSealedScan(ctx, point, engine, blob)
	switch {
	case errors.Is(err, repo.ErrScanExists):
		return newAPIError(http.StatusConflict, codeScanExists, "%v", err)
	case errors.Is(err, repo.ErrCorrupt):
		return newAPIError(http.StatusUnprocessableEntity, codeCorrupt, "%v", err)
	case err != nil:
		return err // 404 point_not_found, storage errors
	}
	s.log.Info("mover scan recorded", "repo", rp.name, "point", point, "engine", engine, "result", rec.Result)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
