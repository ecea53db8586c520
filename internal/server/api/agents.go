package api

import (
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	role := r.URL.Query().Get("role")
	if role != "" && role != configdb.AgentProxy && role != configdb.AgentRepository {
		return badRequest("agent role %q: want proxy or repository", role)
	}
	agents, err := s.store.ListAgents(r.Context(), role)
	if err != nil {
		return err
	}
	now := s.now()
	writeJSON(w, http.StatusOK, list(agents, func(a configdb.Agent) apitypes.Agent {
		v := viewAgent(a)
		v.Online = s.online(a, now)
		return v
	}))
	return nil
}
