package api

import (
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// sampleCapacity keeps the capacity a repository agent's heartbeat
// announces as its sample of the day, the history of the dashboard's
// growth. Failing to keep it is logged: the heartbeat still counts.
func (s *Server) sampleCapacity(r *http.Request, a configdb.Agent, req apitypes.HeartbeatRequest) {
	if a.Role != configdb.AgentRepository || len(req.Capabilities) == 0 {
		return
	}
	st, ok := configdb.Agent{Capabilities: req.Capabilities}.Storage()
	if !ok || st.SizeBytes <= 0 || st.FreeBytes < 0 {
		return
	}
	if err := s.store.RecordRepositorySample(r.Context(), a.Name, st); err != nil {
		s.log.Warn("dashboard: keep the repository's capacity sample", "repository", a.Name, "err", err)
	}
}
