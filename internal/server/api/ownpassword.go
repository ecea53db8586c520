package api

import (
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/passhash"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// changeOwnPassword lets a signed-in console user (any role) change their
// own password (PUT /api/v1/me/password). The current password is checked
// as a login checks it: a wrong one counts towards the user's lock-out and
// the address's failure limit, and a locked user may not change it. The
// user's other login sessions end; the caller's goes on.
func (s *Server) changeOwnPassword(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req apitypes.OwnPasswordRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	c, err := s.store.UserCredentials(ctx, p.User)
	if err != nil {
		return err
	}
	if now := s.now(); now.Before(c.LockedUntil) {
		w.Header().Set("Retry-After", retryAfter(c.LockedUntil.Sub(now)))
		return &apitypes.Error{Status: http.StatusTooManyRequests, Code: "locked",
			Message: "too many wrong passwords: this user is locked for a while; retry later or ask an administrator to set a new password"}
	}
	ok, err := passhash.Check(req.Current, c.PasswordHash)
	if err != nil {
		return err
	}
	if !ok {
		return s.ownPasswordRefused(r, p, c.ID)
	}
	if err := checkPassword(req.New); err != nil {
		return err
	}
	hash, err := passhash.New(req.New, s.logins.Hash)
	if err != nil {
		return err
	}
	if err := s.store.ChangeUserPassword(ctx, p.User, hash, p.SessionID); err != nil {
		return err
	}
	if err := s.audit(ctx, p, "user.password.change", p.User, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ownPasswordRefused counts a wrong current password like a failed login
// (the user's lock-out, the address's failure limit) and audits it.
func (s *Server) ownPasswordRefused(r *http.Request, p configdb.Principal, userID int64) error {
	ctx := r.Context()
	until, err := s.store.LoginFailed(ctx, userID, s.logins.MaxFailures, s.logins.LockFor)
	if err != nil {
		return err
	}
	reason := "wrong current password"
	if !until.IsZero() {
		reason += "; locked"
		s.log.Warn("api: user locked after wrong passwords", "user", p.User, "until", until)
	}
	s.failedFrom(r)
	if err := s.audit(ctx, p, "user.password.failure", p.User, map[string]any{"reason": reason}); err != nil {
		return err
	}
	return &apitypes.Error{Status: http.StatusForbidden, Code: "wrong_password", Message: "the current password is wrong"}
}
