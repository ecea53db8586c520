package repoagent

import (
	"fmt"
	"math"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/server/agent"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// DefaultProxySessions is how many mover sessions one proxy may hold on a
// repository agent at once. Proxies normally start none: they upload into
// the shared session the server opened for the VM.
const DefaultProxySessions = 8

// Access decides what clients of a repository agent's data mover
// service may do. Every request must come with a certificate the server
// vouches for now (agent.PeerSet); then:
//
//   - the server: everything (sessions up to the agent's global bound,
//     listing points, adding scan records, forgetting points for
//     retention, gc and verify for maintenance jobs);
//   - a proxy: reading config, keys, indexes and chunks, using shared
//     sessions, starting at most ProxySessions sessions of its own, and
//     adding malware scan records (a mount server scanning a new point);
//     it may not list points (manifests in clear) nor forget them, nor
//     run gc or verify;
//   - anyone else (another repository agent, an unknown or revoked
//     certificate): nothing.
type Access struct {
	Peers         *agent.PeerSet
	ProxySessions int // 0: DefaultProxySessions
}

// Authorize is a mover.ServerOptions.Authorize hook.
func (a *Access) Authorize(r *http.Request, _ string) (mover.Access, error) {
	pe, err := a.Peers.Check(r.Context(), r.TLS)
	if err != nil {
		return mover.Access{}, err
	}
	switch pe.Role {
	case pki.RoleServer:
		return mover.Access{Sessions: math.MaxInt, ListPoints: true, RecordScans: true}, nil
	case pki.RoleProxy:
		n := a.ProxySessions
		if n <= 0 {
			n = DefaultProxySessions
		}
		return mover.Access{Sessions: n, RecordScans: true}, nil
	}
	return mover.Access{}, fmt.Errorf("%w: a %s may not use a repository agent", pki.ErrWrongRole, pe.Role)
}

// AuthorizeForget is a mover.ServerOptions.AuthorizeForget hook: the
// server only (retention).
func (a *Access) AuthorizeForget(r *http.Request) error {
	return a.serverOnly(r, "forgets points")
}

// AuthorizeMaintain is a mover.ServerOptions.AuthorizeMaintain hook: the
// server only (maintenance jobs: gc, verify); a proxy may not trigger gc.
func (a *Access) AuthorizeMaintain(r *http.Request) error {
	return a.serverOnly(r, "runs repository maintenance")
}

func (a *Access) serverOnly(r *http.Request, what string) error {
	pe, err := a.Peers.Check(r.Context(), r.TLS)
	if err != nil {
		return err
	}
	if pe.Role != pki.RoleServer {
		return fmt.Errorf("%w: only the server %s, not a %s", pki.ErrWrongRole, what, pe.Role)
	}
	return nil
}
