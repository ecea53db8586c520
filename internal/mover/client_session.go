package mover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// endTimeout bounds ending a session (the lock's Release gives no context).
const endTimeout = 30 * time.Second

// clientSession is the client's side of one backup session.
type clientSession struct {
	id        string
	lockName  string // locks/<id> of the repo.Lock that stands for it; "" when attached
	attached  bool   // another client's shared session (Attach): never committed or ended here
	ctx       context.Context
	cancel    context.CancelFunc
	committed atomic.Bool
	cache     *hasCache
}

// path is a session endpoint path relative to the repository base URL.
func (s *clientSession) path(parts ...string) string {
	return "sessions/" + s.id + "/" + strings.Join(parts, "/")
}

// beginSession starts a session for the lock file repo.Lock writes. The
// request ID makes a retried start return the same session.
func (c *Client) beginSession(ctx context.Context, lockName string, info []byte) error {
	var li repo.LockInfo
	if err := json.Unmarshal(info, &li); err != nil || li.Kind != repo.LockShared {
		return fmt.Errorf("mover: only shared locks over the data mover protocol")
	}
	c.mu.Lock()
	if c.sess != nil || c.busy {
		c.mu.Unlock()
		return errors.New("mover: a session is already open on this client (use one client per concurrent backup)")
	}
	c.busy = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.busy = false
		c.mu.Unlock()
	}()
	req, _ := json.Marshal(sessionRequest{RequestID: randomID(), Kind: li.Kind, Hostname: li.Hostname, PID: li.PID,
		Shared: c.o.Shared})
	b, err := c.do(ctx, call{method: http.MethodPost, path: "sessions", body: req, ctype: ctypeJSON, limit: maxSmallReply})
	if err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	var reply sessionResponse
	if err := decodeJSON(b, &reply); err != nil || !hex32Pattern.MatchString(reply.Session) {
		return fmt.Errorf("%w: session reply %q", ErrProtocol, b)
	}
	if c.o.Shared && !reply.Shared {
		// An agent without shared sessions ignored the flag: end the
		// private session it started rather than let other proxies fail.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
		defer cancel()
		_, _ = c.do(dctx, call{method: http.MethodDelete, path: "sessions/" + reply.Session, limit: maxSmallReply})
		return errors.New("start session: the repository agent does not support shared sessions (upgrade it)")
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &clientSession{id: reply.Session, lockName: lockName, ctx: sctx, cancel: cancel, cache: newHasCache()}
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	c.log.Info("mover session started", "agent", c.base, "session", s.id[:8], "shared", c.o.Shared)
	return nil
}

// SessionID returns the ID of the client's current session, its own or an
// attached one, or "" without one. The ID of a shared session is what
// other clients Attach to; it acts as a capability, so hand it only to
// the proxies that work on the same backup.
func (c *Client) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return ""
	}
	return c.sess.id
}

// Attach makes this client use the shared session id, which another client
// (its owner) started with ClientOptions.Shared and reported by SessionID.
// Afterwards PutChunk, SaveIndex, TouchChunk, Prefetch and LoadIndex's
// prefetch work as within a session of its own; CommitPoint fails (the
// owner commits), and neither Detach nor Close end the session. Attach
// sends nothing: a session the agent does not know, or does not share
// with this client, fails the first call with ErrSessionNotFound. It
// fails if the client already has a session.
func (c *Client) Attach(id string) error {
	if !hex32Pattern.MatchString(id) {
		return fmt.Errorf("mover: invalid session id %.40q (want 32 lowercase hex digits)", id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil || c.busy {
		return errors.New("mover: a session is already open on this client (use one client per concurrent backup)")
	}
	sctx, cancel := context.WithCancel(context.Background())
	c.sess = &clientSession{id: id, attached: true, ctx: sctx, cancel: cancel, cache: newHasCache()}
	c.log.Info("mover session attached", "agent", c.base, "session", id[:8])
	return nil
}

// Detach forgets an attached session without ending it on the agent (its
// owner commits or aborts it). Calls still running fail or finish on
// their own; later backup calls get ErrNoSession. It does nothing when
// the client has no attached session (a session of its own ends with its
// lock's Release).
func (c *Client) Detach() {
	c.mu.Lock()
	s := c.sess
	if s == nil || !s.attached {
		c.mu.Unlock()
		return
	}
	c.sess = nil
	c.mu.Unlock()
	s.cancel()
	c.log.Info("mover session detached", "agent", c.base, "session", s.id[:8])
}

// keepalive refreshes the session (the lock's periodic refresh).
func (c *Client) keepalive(ctx context.Context, lockName string) error {
	s, err := c.session()
	if err != nil || s.attached || s.lockName != lockName {
		return ErrNoSession
	}
	_, err = c.do(ctx, call{method: http.MethodPost, path: s.path("keepalive"), limit: maxSmallReply})
	return err
}

// endSession ends the session (the lock's Release): it aborts an
// uncommitted session, and forgets a committed one. An agent that no
// longer knows the session is not an error.
func (c *Client) endSession(lockName string) error {
	c.mu.Lock()
	s := c.sess
	if s == nil || s.attached || s.lockName != lockName {
		c.mu.Unlock()
		return nil
	}
	c.sess = nil
	c.mu.Unlock()
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), endTimeout)
	defer cancel()
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "sessions/" + s.id, limit: maxSmallReply})
	if errors.Is(err, ErrSessionNotFound) {
		err = nil
	}
	if !s.committed.Load() {
		c.log.Info("mover session aborted", "agent", c.base, "session", s.id[:8])
	}
	return err
}
