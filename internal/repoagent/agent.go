package repoagent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/server/agent"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// Server is the backup server as the agent reaches it (agent.Client).
type Server interface {
	Heartbeat(ctx context.Context, address string, slots int) error
	HeartbeatLoop(ctx context.Context, interval time.Duration, address string, slots int, onErr func(error))
	OnReply(fn func(apitypes.HeartbeatReply))
}

var _ Server = (*agent.Client)(nil)

// Options configure a repository agent.
type Options struct {
	// Name is the agent's name, as jobs refer to the repository.
	Name string
	Repo *repo.Repository
	// Server is the backup server; Creds the agent's certificate, which
	// its data mover service presents.
	Server Server
	Creds  *agent.Credentials
	// Address is the host:port proxies reach the agent at (advertised in
	// heartbeats); Slots its concurrent task slots.
	Address string
	Slots   int
	// ProxySessions bounds the mover sessions one proxy may hold at once;
	// 0 means DefaultProxySessions.
	ProxySessions int
	// SessionTimeout ends an idle mover session and releases its
	// repository lock; 0 means the mover's default.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often the agent heartbeats; 0 means
	// agent.HeartbeatInterval.
	HeartbeatInterval time.Duration
	Logger            *slog.Logger // nil: discard
	// Notice, if set, receives messages for the operator: failed
	// heartbeats, sessions ended for certificates no longer vouched for.
	Notice func(msg string)
	// Ready, if set, is called once the agent serves.
	Ready func(addr net.Addr)
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Notice == nil {
		o.Notice = func(msg string) { o.Logger.Warn(msg) }
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = agent.HeartbeatInterval
	}
}

// Serve serves the data mover protocol on ln and heartbeats until ctx
// ends, then shuts the service down (at most 10 s for running requests).
func Serve(ctx context.Context, ln net.Listener, o Options) error {
	o.defaults()
	var ms *mover.Server
	peers := agent.NewPeerSet(agent.PeerSetOptions{
		Refresh: func(ctx context.Context) error { return o.Server.Heartbeat(ctx, o.Address, o.Slots) },
		OnUpdate: func(valid func(string) bool) {
			if n := ms.EndSessions(valid); n > 0 {
				o.Notice(fmt.Sprintf("ended %d mover sessions of certificates the server no longer vouches for", n))
			}
		},
	})
	access := &Access{Peers: peers, ProxySessions: o.ProxySessions}
	ms, err := mover.NewServer(map[string]*repo.Repository{o.Name: o.Repo}, mover.ServerOptions{
		Logger: o.Logger, SessionTTL: o.SessionTimeout,
		Authorize: access.Authorize, AuthorizeForget: access.AuthorizeForget,
		AuthorizeMaintain: access.AuthorizeMaintain,
	})
	if err != nil {
		return err
	}
	defer ms.Close()
	o.Server.OnReply(func(rep apitypes.HeartbeatReply) { peers.Update(rep.Peers) })
	tc, err := o.Creds.ServerTLSConfig()
	if err != nil {
		return err
	}
	srv := mover.NewHTTPServer("", ms, tc)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	go o.Server.HeartbeatLoop(hctx, o.HeartbeatInterval, o.Address, o.Slots, func(err error) {
		o.Notice(fmt.Sprintf("heartbeat: %v", err))
	})
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
