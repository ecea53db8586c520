package configdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"strings"
	"time"
)

// Role is what an API token may do.
type Role string

// API roles, from most to least powerful.
const (
	RoleAdministrator   Role = "administrator"
	RoleBackupOperator  Role = "backup_operator"
	RoleRestoreOperator Role = "restore_operator"
	RoleViewer          Role = "viewer"
)

// Valid reports whether r is one of the API roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAdministrator, RoleBackupOperator, RoleRestoreOperator, RoleViewer:
		return true
	}
	return false
}

// Token prefixes tell the kinds apart (and let secret scanners spot them).
const (
	apiTokenPrefix  = "hfa_"
	joinTokenPrefix = "hfj_"
)

// lastUsedGranularity limits last_used_at writes to one a minute per token.
const lastUsedGranularity = time.Minute

// Principal is who an authenticated API request acts as: an API token, or
// a user through a login session.
type Principal struct {
	TokenID int64
	Name    string // the token name, or UserActor(User)
	Role    Role
	// Set for a login session only.
	UserID    int64
	User      string
	SessionID int64
}

// APIToken describes a token; the token itself is never kept.
type APIToken struct {
	ID       int64
	Name     string
	Role     Role
	Created  time.Time
	LastUsed time.Time // zero: never used
}

// newToken returns a random token with prefix and its SHA-256.
func newToken(prefix string) (string, []byte) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	tok := prefix + base64.RawURLEncoding.EncodeToString(b)
	return tok, hashToken(tok)
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// CreateAPIToken creates a token called name with role and returns it; this
// is the only time it is seen. A second token of the same name is ErrConflict.
func (s *Store) CreateAPIToken(ctx context.Context, name string, role Role) (string, error) {
	if strings.TrimSpace(name) == "" {
		return "", invalid("API token name is empty")
	}
	if !role.Valid() {
		return "", invalid("API role %q", role)
	}
	tok, hash := newToken(apiTokenPrefix)
	_, err := s.exec(ctx, s.db, "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
		name, string(role), hash, s.timestamp())
	if err != nil {
		return "", s.wrapNamed("create API token "+name, name, err)
	}
	return tok, nil
}

// Authenticate returns the principal of token, or ErrUnauthorized.
func (s *Store) Authenticate(ctx context.Context, token string) (Principal, error) {
	if !strings.HasPrefix(token, apiTokenPrefix) {
		return Principal{}, ErrUnauthorized
	}
	var p Principal
	var role string
	err := s.queryRow(ctx, s.db, "SELECT id, name, role FROM api_tokens WHERE token_hash = ?",
		hashToken(token)).Scan(&p.TokenID, &p.Name, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, s.wrap("authenticate", err)
	}
	p.Role = Role(role)
	now := s.timestamp()
	_, err = s.exec(ctx, s.db,
		"UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
		now, p.TokenID, now.Add(-lastUsedGranularity))
	if err != nil {
		return Principal{}, s.wrap("record token use", err)
	}
	return p, nil
}

// ListAPITokens lists the tokens by name.
func (s *Store) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := s.query(ctx, s.db, "SELECT id, name, role, created_at, last_used_at FROM api_tokens ORDER BY name")
	if err != nil {
		return nil, s.wrap("list API tokens", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		var t APIToken
		var role string
		if err := rows.Scan(&t.ID, &t.Name, &role, timeCol{&t.Created}, timeCol{&t.LastUsed}); err != nil {
			return nil, s.wrap("list API tokens", err)
		}
		t.Role = Role(role)
		out = append(out, t)
	}
	return out, s.wrap("list API tokens", rows.Err())
}

// DeleteAPIToken revokes the token called name.
func (s *Store) DeleteAPIToken(ctx context.Context, name string) error {
	return s.execOne(ctx, "delete API token "+name, "DELETE FROM api_tokens WHERE name = ?", name)
}
