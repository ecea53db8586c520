package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/libvirtsrc"
)

// checkLibvirtSource checks a libvirt source (libvirtsrc): connection
// URIs, no password. A proxy that has not joined yet is a warning (it may
// join later), logged and returned.
func (s *Server) checkLibvirtSource(ctx context.Context, req apitypes.SourceRequest) (json.RawMessage, []string, error) {
	if req.Password != "" {
		return nil, nil, badRequest("a libvirt source takes no password (libvirt authenticates by socket permissions or SSH key)")
	}
	d, err := libvirtsrc.Parse(req.Definition)
	if err != nil {
		return nil, nil, badRequest("source %q: %v", req.Name, err)
	}
	var warnings []string
	if d.Proxy != "" {
		_, err := s.store.GetAgent(ctx, configdb.AgentProxy, d.Proxy)
		switch {
		case errors.Is(err, configdb.ErrNotFound):
			warnings = append(warnings, fmt.Sprintf("proxy %s has not joined yet: the source's domains wait for it", d.Proxy))
		case err != nil:
			return nil, nil, err
		}
	}
	for _, w := range warnings {
		s.log.Warn("libvirt source", "source", req.Name, "warning", w)
	}
	def, err := json.Marshal(d)
	return def, warnings, err
}
