package mover

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// The read-only endpoints need no session: restores and the proxy's key
// set-up use them.

// getConfig: GET config. The repository's plain config file.
func (s *Server) getConfig(w http.ResponseWriter, r *http.Request, rp *served) error {
	b, err := rp.r.ConfigFile(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ctypeJSON)
	_, _ = w.Write(b)
	return nil
}

// getKeys: GET keys. Every key file; each wraps the master secret with the
// repository password, which the proxy has and the wire never carries.
func (s *Server) getKeys(w http.ResponseWriter, r *http.Request, rp *served) error {
	keys, err := rp.r.KeyFiles(r.Context())
	if err != nil {
		return err
	}
	var reply keysResponse
	for _, k := range keys {
		if keyNamePattern.MatchString(k.Name) {
			reply.Keys = append(reply.Keys, keyEntry{Name: k.Name, Data: k.Data})
		}
	}
	writeJSON(w, http.StatusOK, reply)
	return nil
}

// getPoints: GET points. Every committed manifest, oldest first.
// Only clients granted Access.ListPoints: manifests name VMs and disks.
func (s *Server) getPoints(w http.ResponseWriter, r *http.Request, rp *served) error {
	if !accessOf(r).ListPoints {
		return newAPIError(http.StatusForbidden, codeForbidden, "this client may not list restore points")
	}
	ms, damaged, err := rp.r.ScanPoints(r.Context())
	if err != nil {
		return err
	}
	for _, d := range damaged { // left out: one damaged manifest hides only its point
		s.log.Warn("mover points: file under points/ left out", "repo", rp.name, "file", d.File, "err", d.String())
	}
	reply := pointsResponse{Points: make([]json.RawMessage, 0, len(ms))}
	for _, m := range ms {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		reply.Points = append(reply.Points, b)
	}
	writeJSON(w, http.StatusOK, reply)
	return nil
}

// getIndex: GET points/{point}/disks/{disk}/index. The plain index, checked
// against the manifest's hash (the client checks again).
func (s *Server) getIndex(w http.ResponseWriter, r *http.Request, rp *served) error {
	point := r.PathValue("point")
	if !pointPattern.MatchString(point) {
		return badRequest(fmt.Errorf("invalid point id %q", point))
	}
	disk, err := parseDisk(r.PathValue("disk"))
	if err != nil {
		return badRequest(err)
	}
	m, err := rp.r.LoadManifest(r.Context(), point)
	if err != nil {
		return err
	}
	if disk >= len(m.Disks) {
		return newAPIError(http.StatusNotFound, codeNotFound, "point %s has no disk %d", point, disk)
	}
	ix, err := rp.r.LoadIndex(r.Context(), m, disk)
	if err != nil {
		return err
	}
	b, err := ix.MarshalBinary()
	if err != nil {
		return err
	}
	writeBinary(w, b)
	return nil
}

// getChunk: GET chunks/{id}. The sealed blob as stored; the client opens
// and verifies it.
func (s *Server) getChunk(w http.ResponseWriter, r *http.Request, rp *served) error {
	id, err := repo.ParseChunkID(r.PathValue("id"))
	if err != nil {
		return badRequest(err)
	}
	b, err := rp.r.LoadSealedChunk(r.Context(), id)
	if err != nil {
		return err
	}
	writeBinary(w, b)
	return nil
}

// forgetPoint: DELETE points/{point}. Removes a restore point (manifest,
// then indexes; chunks stay for GC), for retention run by the backup
// server. Only callers AuthorizeForget allows; a point already gone is
// 404 point_not_found, which a retrying client takes as done.
func (s *Server) forgetPoint(w http.ResponseWriter, r *http.Request, rp *served) error {
	if s.o.AuthorizeForget == nil {
		return newAPIError(http.StatusForbidden, codeForbidden, "this agent does not forget points over the protocol")
	}
	if err := s.o.AuthorizeForget(r); err != nil {
		return newAPIError(http.StatusForbidden, codeForbidden, "%v", err)
	}
	point := r.PathValue("point")
	if !pointPattern.MatchString(point) {
		return badRequest(fmt.Errorf("invalid point id %q", point))
	}
	m, err := rp.r.LoadManifest(r.Context(), point)
	if err != nil {
		return err
	}
	ctx, cancel := detached(r.Context())
	defer cancel()
	if err := rp.r.RemovePoint(ctx, m); err != nil {
		return err
	}
	s.log.Info("mover point forgotten", "repo", rp.name, "point", point, "vm", m.VM)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
