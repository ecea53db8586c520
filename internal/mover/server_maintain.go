package mover

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// MaintainRequest is the body of POST maintenance: what the agent runs on
// its repository, in this order (gc, then verify).
type MaintainRequest struct {
	GC           bool  `json:"gc,omitempty"`
	GraceSeconds int64 `json:"grace_seconds,omitempty"` // gc: keep unreferenced data younger than this
	Verify       bool  `json:"verify,omitempty"`
	ReadData     bool  `json:"read_data,omitempty"` // verify: read, decrypt and re-hash chunks
	// ReadDataPart of ReadDataOf (0-based; ReadDataOf 0 or 1: all chunks):
	// the share of the chunks this run reads (repo.Subset).
	ReadDataPart int `json:"read_data_part,omitempty"`
	ReadDataOf   int `json:"read_data_of,omitempty"`
}

// MaintainResult is the reply: the result of each part that ran, and the
// error that stopped a part (the reply is 200 even then: the other part's
// result is worth keeping).
type MaintainResult struct {
	GC          *repo.GCResult     `json:"gc,omitempty"`
	GCError     string             `json:"gc_error,omitempty"`
	Verify      *repo.VerifyResult `json:"verify,omitempty"`
	VerifyError string             `json:"verify_error,omitempty"`
}

// maxMaintainReply bounds the reply (a damaged repository lists many
// problems).
const maxMaintainReply = 64 << 20

// maintainTimeout bounds one maintenance request: a verify reading a
// large repository takes hours.
const maintainTimeout = 48 * time.Hour

// maintain: POST maintenance. Runs gc and/or verify on the repository, on
// the agent's own storage, for maintenance jobs the backup server runs.
// Only callers AuthorizeMaintain allows (the server: a proxy must never
// trigger gc).
func (s *Server) maintain(w http.ResponseWriter, r *http.Request, rp *served) error {
	if s.o.AuthorizeMaintain == nil {
		return newAPIError(http.StatusForbidden, codeForbidden, "this agent runs no maintenance over the protocol")
	}
	if err := s.o.AuthorizeMaintain(r); err != nil {
		return newAPIError(http.StatusForbidden, codeForbidden, "%v", err)
	}
	body, err := readBody(w, r, maxSessionBody)
	if err != nil {
		return err
	}
	var req MaintainRequest
	if err := decodeJSON(body, &req); err != nil || req.GraceSeconds < 0 || (!req.GC && !req.Verify) {
		return badRequest(fmt.Errorf("maintenance request: want {\"gc\": true, \"grace_seconds\": N} and/or {\"verify\": true, …}"))
	}
	sub := repo.Subset{Part: req.ReadDataPart, Of: req.ReadDataOf}
	if sub.Of > 1 && (sub.Part < 0 || sub.Part >= sub.Of) {
		return badRequest(fmt.Errorf("maintenance request: read-data part %d of %d", sub.Part, sub.Of))
	}
	// A cancelled request (the session cancelled on the server) stops the
	// work: gc and verify may stop anywhere without harm.
	ctx, cancel := context.WithTimeout(r.Context(), maintainTimeout)
	defer cancel()
	var res MaintainResult
	if req.GC {
		s.log.Info("mover maintenance: gc", "repo", rp.name)
		g, err := rp.r.GC(ctx, repo.GCOptions{Grace: time.Duration(req.GraceSeconds) * time.Second})
		res.GC = &g
		if err != nil {
			res.GCError = err.Error()
		}
	}
	if req.Verify {
		s.log.Info("mover maintenance: verify", "repo", rp.name, "read_data", req.ReadData, "subset", sub.String())
		v, err := rp.r.Verify(ctx, repo.VerifyOptions{ReadData: req.ReadData, Subset: sub})
		res.Verify = &v
		if err != nil {
			res.VerifyError = err.Error()
		}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
