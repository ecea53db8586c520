package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/holdfast-backup/holdfast/internal/passhash"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// LoginPolicy rules console users' logins (POST /api/v1/login); zero
// fields take the defaults.
type LoginPolicy struct {
	// MaxFailures consecutive failed logins lock a user for LockFor
	// (defaults 5 and 15 min). The per-address limit (AuthFailureLimit)
	// applies as well.
	MaxFailures int
	LockFor     time.Duration
	// A login session ends after IdleTimeout without a request (30 min)
	// and MaxAge after the login in any case (12 h).
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// Hash are the argon2id parameters of new password hashes
	// (passhash.Default).
	Hash passhash.Params
}

func (l LoginPolicy) withDefaults() LoginPolicy {
	if l.MaxFailures <= 0 {
		l.MaxFailures = 5
	}
	if l.LockFor <= 0 {
		l.LockFor = 15 * time.Minute
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 30 * time.Minute
	}
	if l.MaxAge < l.IdleTimeout {
		l.MaxAge = max(12*time.Hour, l.IdleTimeout)
	}
	if l.Hash == (passhash.Params{}) {
		l.Hash = passhash.Default
	}
	return l
}

// totpOpts are the TOTP parameters: RFC 6238 defaults (SHA-1, 6 digits,
// 30 s); totpStep allows one step of clock skew either way.
var totpOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// dummyHash is checked against for unknown users, so a login takes as
// long whether the user exists or not.
type dummyHash struct {
	once sync.Once
	hash string
}

func (d *dummyHash) get(p passhash.Params) string {
	d.once.Do(func() { d.hash, _ = passhash.New("no such user", p) })
	return d.hash
}

func errLoginFailed() error {
	return errUnauthenticated("wrong user name, password or one-time code")
}

// login checks a user's password (and TOTP code), starts a login session
// and sets its cookie; the answer carries the session's CSRF token.
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	if err := checkLoginRequest(r); err != nil {
		return err
	}
	var req apitypes.LoginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	actor := configdb.UserActor(req.User)
	if !namePattern.MatchString(req.User) {
		actor = configdb.UserActor("(invalid name)") // no sender-chosen text of any length in the audit log
	}
	c, err := s.store.UserCredentials(ctx, req.User)
	if errors.Is(err, configdb.ErrNotFound) {
		_, _ = passhash.Check(req.Password, s.dummy.get(s.logins.Hash))
		return s.loginRefused(ctx, actor, "unknown user", errLoginFailed())
	}
	if err != nil {
		return err
	}
	now := s.now()
	if now.Before(c.LockedUntil) {
		w.Header().Set("Retry-After", retryAfter(c.LockedUntil.Sub(now)))
		return s.loginRefused(ctx, actor, "locked", &apitypes.Error{Status: http.StatusTooManyRequests, Code: "locked",
			Message: "too many failed logins: this user is locked for a while; retry later or ask an administrator to set a new password"})
	}
	ok, err := s.checkCredentials(ctx, c, req, now)
	if err != nil {
		return err
	}
	if !ok {
		until, err := s.store.LoginFailed(ctx, c.ID, s.logins.MaxFailures, s.logins.LockFor)
		if err != nil {
			return err
		}
		reason := "wrong password or code"
		if !until.IsZero() {
			reason += "; locked"
			s.log.Warn("api: user locked after failed logins", "user", req.User, "until", until)
		}
		return s.loginRefused(ctx, actor, reason, errLoginFailed())
	}
	return s.startSession(w, r, c.User)
}

// checkLoginRequest refuses a login a page of another site could send (a
// login CSRF, logging the victim in as the attacker): its Origin, when
// given, must be this server, and its body JSON, which an HTML form cannot
// declare and a cross-site fetch cannot send without a CORS preflight the
// server never grants.
func checkLoginRequest(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		return errCSRF("login from another origin")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return badRequest("login wants Content-Type: application/json")
	}
	return nil
}

// checkCredentials reports whether req has c's password and, if c has a
// TOTP key, a valid code not used before.
func (s *Server) checkCredentials(ctx context.Context, c configdb.UserCredentials, req apitypes.LoginRequest, now time.Time) (bool, error) {
	ok, err := passhash.Check(req.Password, c.PasswordHash)
	if err != nil || !ok || c.TOTPKey == nil {
		return ok, err
	}
	step, ok := totpStep(string(c.TOTPKey), req.TOTP, now)
	if !ok {
		return false, nil
	}
	return s.store.UseTOTPStep(ctx, c.ID, step)
}

// totpStep returns the time step, within one of now's, whose code is code.
func totpStep(secret, code string, now time.Time) (int64, bool) {
	period := int64(totpOpts.Period)
	cur := now.Unix() / period
	var step int64
	found := 0
	for _, st := range []int64{cur - 1, cur, cur + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(st*period, 0), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, found = st, 1
		}
	}
	return step, found == 1
}

// loginRefused audits a refused login and returns refusal.
func (s *Server) loginRefused(ctx context.Context, actor, reason string, refusal error) error {
	if err := s.store.Audit(ctx, actor, "login.failure", "", map[string]any{"reason": reason}); err != nil {
		return errors.Join(refusal, err)
	}
	return refusal
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u configdb.User) error {
	ctx := r.Context()
	if err := s.store.LoginSucceeded(ctx, u.ID); err != nil {
		return err
	}
	secret, exp, err := s.store.CreateLoginSession(ctx, u.ID, s.logins.IdleTimeout, s.logins.MaxAge)
	if err != nil {
		return err
	}
	if err := s.store.Audit(ctx, configdb.UserActor(u.Name), "login.success", "", nil); err != nil {
		return err
	}
	setSessionCookie(w, secret)
	w.Header().Set("Cache-Control", "no-store") // carries the CSRF token
	writeJSON(w, http.StatusOK, apitypes.Me{Name: u.Name, Role: string(u.Role), Kind: "session",
		CSRFToken: csrfToken(secret), Expires: &exp})
	return nil
}

// logout ends the caller's login session and clears its cookie; for a
// bearer token it only clears the cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	setSessionCookie(w, "")
	if p.SessionID != 0 {
		c, err := r.Cookie(SessionCookie)
		if err == nil {
			err = s.store.DeleteLoginSession(r.Context(), c.Value)
		}
		if err != nil && !errors.Is(err, configdb.ErrNotFound) {
			return err
		}
		if err := s.audit(r.Context(), p, "logout", "", nil); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// me tells the caller who it is; a login session also gets its CSRF token.
func (s *Server) me(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	me := apitypes.Me{Name: p.Name, Role: string(p.Role), Kind: "token"}
	if p.SessionID != 0 {
		me.Name, me.Kind = p.User, "session"
		if c, err := r.Cookie(SessionCookie); err == nil {
			me.CSRFToken = csrfToken(c.Value)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, me)
	return nil
}
