package configdb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Agent roles: what a join token enrols and what an agent row is.
const (
	AgentProxy      = "proxy"
	AgentRepository = "repository"
)

func validAgentRole(role string) bool { return role == AgentProxy || role == AgentRepository }

// JoinToken describes a one-time agent enrolment token (never the token).
type JoinToken struct {
	ID      int64
	Role    string
	Created time.Time
	Expires time.Time
	Used    time.Time // zero: not used
	UsedBy  string
}

// CreateJoinToken creates a one-time token that lets one agent of role
// (AgentProxy or AgentRepository) join within ttl, and returns it.
func (s *Store) CreateJoinToken(ctx context.Context, role string, ttl time.Duration) (string, error) {
	if !validAgentRole(role) {
		return "", invalid("join token role %q: want %q or %q", role, AgentProxy, AgentRepository)
	}
	if ttl <= 0 {
		return "", invalid("join token lifetime %v", ttl)
	}
	tok, hash := newToken(joinTokenPrefix)
	now := s.timestamp()
	_, err := s.exec(ctx, s.db,
		"INSERT INTO join_tokens (token_hash, role, created_at, expires_at) VALUES (?, ?, ?, ?)",
		hash, role, now, now.Add(ttl))
	if err != nil {
		return "", s.wrap("create join token", err)
	}
	return tok, nil
}

// ConsumeJoinToken marks token used by agentName and returns the role it
// grants. An unknown, expired or already used token is ErrUnauthorized. It is
// a single conditional UPDATE: of concurrent attempts exactly one succeeds.
func (s *Store) ConsumeJoinToken(ctx context.Context, token, agentName string) (role string, err error) {
	if !strings.HasPrefix(token, joinTokenPrefix) {
		return "", ErrUnauthorized
	}
	now := s.timestamp()
	err = s.queryRow(ctx, s.db, `UPDATE join_tokens SET used_at = ?, used_by = ?
		WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING role`,
		now, agentName, hashToken(token), now).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrUnauthorized
	}
	if err != nil {
		return "", s.wrap("consume join token", err)
	}
	return role, nil
}

// ListJoinTokens lists join tokens, newest first.
func (s *Store) ListJoinTokens(ctx context.Context) ([]JoinToken, error) {
	rows, err := s.query(ctx, s.db,
		"SELECT id, role, created_at, expires_at, used_at, used_by FROM join_tokens ORDER BY id DESC")
	if err != nil {
		return nil, s.wrap("list join tokens", err)
	}
	defer rows.Close()
	var out []JoinToken
	for rows.Next() {
		var t JoinToken
		err := rows.Scan(&t.ID, &t.Role, timeCol{&t.Created}, timeCol{&t.Expires}, timeCol{&t.Used}, &t.UsedBy)
		if err != nil {
			return nil, s.wrap("list join tokens", err)
		}
		out = append(out, t)
	}
	return out, s.wrap("list join tokens", rows.Err())
}

// PurgeJoinTokens deletes tokens that expired before cutoff and returns how many.
func (s *Store) PurgeJoinTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.exec(ctx, s.db, "DELETE FROM join_tokens WHERE expires_at < ?", cutoff)
	if err != nil {
		return 0, s.wrap("purge join tokens", err)
	}
	return res.RowsAffected()
}
