package server

import (
	"net/http"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/server/console"
)

// withConsole routes /api/ and /metrics to the API and everything else to
// the web console (internal/server/console), on the one HTTPS port.
func withConsole(apiHandler http.Handler) (http.Handler, error) {
	con, err := console.New()
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" {
			apiHandler.ServeHTTP(w, r)
			return
		}
		con.ServeHTTP(w, r)
	}), nil
}
