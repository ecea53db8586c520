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
	lockName  string // locks/<id> of the repo.Lock that stands for it
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
	req, _ := json.Marshal(sessionRequest{RequestID: randomID(), Kind: li.Kind, Hostname: li.Hostname, PID: li.PID})
	b, err := c.do(ctx, call{method: http.MethodPost, path: "sessions", body: req, ctype: ctypeJSON, limit: maxSmallReply})
	if err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	var reply sessionResponse
	if err := decodeJSON(b, &reply); err != nil || !hex32Pattern.MatchString(reply.Session) {
		return fmt.Errorf("%w: session reply %q", ErrProtocol, b)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &clientSession{id: reply.Session, lockName: lockName, ctx: sctx, cancel: cancel, cache: newHasCache()}
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	c.log.Info("mover session started", "agent", c.base, "session", s.id[:8])
	return nil
}

// keepalive refreshes the session (the lock's periodic refresh).
func (c *Client) keepalive(ctx context.Context, lockName string) error {
	s, err := c.session()
	if err != nil || s.lockName != lockName {
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
	if s == nil || s.lockName != lockName {
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
