package configdb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// loginSessionPrefix starts every session cookie value.
const loginSessionPrefix = "hfs_"

// slideGranularity limits expires_at writes to one a minute per session.
const slideGranularity = time.Minute

// CreateLoginSession starts a login session of user id and returns its
// secret (the cookie value; only its hash is kept) and when it expires if
// unused. Each use moves the expiry to idle from then, never beyond
// maxAge from now. Expired sessions of every user are deleted on the way.
func (s *Store) CreateLoginSession(ctx context.Context, userID int64, idle, maxAge time.Duration) (string, time.Time, error) {
	if idle <= 0 || maxAge < idle {
		return "", time.Time{}, invalid("session lifetimes idle %s, max %s", idle, maxAge)
	}
	now := s.timestamp()
	if _, err := s.exec(ctx, s.db, "DELETE FROM login_sessions WHERE expires_at <= ?", now); err != nil {
		return "", time.Time{}, s.wrap("delete expired login sessions", err)
	}
	tok, hash := newToken(loginSessionPrefix)
	exp := now.Add(idle)
	_, err := s.exec(ctx, s.db, `INSERT INTO login_sessions (user_id, session_hash, created_at, expires_at, max_expires_at)
		VALUES (?, ?, ?, ?, ?)`, userID, hash, now, exp, now.Add(maxAge))
	if err != nil {
		return "", time.Time{}, s.wrap("create login session", err)
	}
	return tok, exp, nil
}

// AuthenticateSession returns the principal of a login session's secret
// and moves its expiry (see CreateLoginSession); an unknown or expired
// session is ErrUnauthorized.
func (s *Store) AuthenticateSession(ctx context.Context, secret string, idle time.Duration) (Principal, error) {
	if !strings.HasPrefix(secret, loginSessionPrefix) {
		return Principal{}, ErrUnauthorized
	}
	var p Principal
	var role string
	var id int64
	var exp, maxExp time.Time
	err := s.queryRow(ctx, s.db, `SELECT ls.id, u.id, u.name, u.role, ls.expires_at, ls.max_expires_at
		FROM login_sessions ls JOIN users u ON u.id = ls.user_id WHERE ls.session_hash = ?`,
		hashToken(secret)).Scan(&id, &p.UserID, &p.User, &role, timeCol{&exp}, timeCol{&maxExp})
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, s.wrap("authenticate session", err)
	}
	now := s.timestamp()
	if !now.Before(exp) {
		_, err := s.exec(ctx, s.db, "DELETE FROM login_sessions WHERE id = ?", id)
		return Principal{}, errors.Join(ErrUnauthorized, s.wrap("delete expired login session", err))
	}
	if next := minTime(now.Add(idle), maxExp); next.Sub(exp) >= slideGranularity {
		if _, err := s.exec(ctx, s.db, "UPDATE login_sessions SET expires_at = ? WHERE id = ?", next, id); err != nil {
			return Principal{}, s.wrap("extend login session", err)
		}
	}
	p.Name, p.Role, p.SessionID = UserActor(p.User), Role(role), id
	return p, nil
}

// UserActor is the audit actor (Principal.Name) of user name, told apart
// from API token names.
func UserActor(name string) string { return "user:" + name }

// DeleteLoginSession ends the login session with secret; an unknown one
// is ErrNotFound.
func (s *Store) DeleteLoginSession(ctx context.Context, secret string) error {
	return s.execOne(ctx, "delete login session", "DELETE FROM login_sessions WHERE session_hash = ?", hashToken(secret))
}

// CountLoginSessions counts the live login sessions of user name.
func (s *Store) CountLoginSessions(ctx context.Context, name string) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM login_sessions ls JOIN users u ON u.id = ls.user_id
		WHERE u.name = ? AND ls.expires_at > ?`, name, s.timestamp()).Scan(&n)
	return n, s.wrap("count login sessions", err)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
