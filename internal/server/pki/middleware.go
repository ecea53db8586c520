package pki

import (
	"context"
	"errors"
	"net/http"
)

type ctxAgentKey struct{}

// Agent is the verified identity of an agent peer.
type Agent struct {
	Role, Name, Fingerprint string
}

// RequireAgent wraps handlers of agent-only endpoints: the request must come
// over TLS with a verified certificate whose role is one of roles (401
// without a certificate, 403 with another role). The handler finds the
// identity with AgentFrom.
func RequireAgent(roles ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, err := RequireRole(r.TLS, roles...)
			switch {
			case errors.Is(err, ErrNoPeerCertificate):
				http.Error(w, "agent certificate required", http.StatusUnauthorized)
				return
			case err != nil:
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			role, _, _ := PeerIdentity(r.TLS)
			a := Agent{Role: role, Name: name, Fingerprint: Fingerprint(r.TLS.VerifiedChains[0][0])}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxAgentKey{}, a)))
		})
	}
}

// AgentFrom returns the identity RequireAgent stored in ctx.
func AgentFrom(ctx context.Context) (Agent, bool) {
	a, ok := ctx.Value(ctxAgentKey{}).(Agent)
	return a, ok
}
