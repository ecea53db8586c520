package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// SessionCookie is the name of the login session cookie. The __Host-
// prefix makes browsers accept it only with Secure, Path=/ and no Domain,
// so no other host or insecure page can set or shadow it.
const SessionCookie = "__Host-holdfast_session"

// CSRFHeader carries a login session's CSRF token on unsafe requests.
const CSRFHeader = "X-CSRF-Token"

// csrfToken is the CSRF token of the login session with secret: an HMAC
// of a fixed label keyed with the secret. Nothing is stored; a page that
// cannot read the HttpOnly cookie learns it only from POST /login or GET
// /me, which cross-site pages cannot read.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("holdfast csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// safeMethod reports whether m changes nothing (no CSRF check).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sessionPrincipal authenticates r by its login session cookie; unsafe
// methods also need the session's CSRF token and, when the browser sends
// one, an Origin of this server.
func (s *Server) sessionPrincipal(r *http.Request, secret string) (configdb.Principal, error) {
	p, err := s.store.AuthenticateSession(r.Context(), secret, s.logins.IdleTimeout)
	if errors.Is(err, configdb.ErrUnauthorized) {
		return configdb.Principal{}, errUnauthenticated("invalid or expired login session")
	}
	if err != nil {
		return configdb.Principal{}, err
	}
	if safeMethod(r.Method) {
		return p, nil
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		return configdb.Principal{}, errCSRF("request from another origin")
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrfToken(secret))) != 1 {
		return configdb.Principal{}, errCSRF("missing or wrong " + CSRFHeader + " header")
	}
	return p, nil
}

// sameOrigin reports whether origin is https://host.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Scheme == "https" && u.Host == host
}

func errCSRF(msg string) error {
	return &apitypes.Error{Status: http.StatusForbidden, Code: "csrf_failed", Message: "cross-site request refused: " + msg}
}

// setSessionCookie sets (secret != "") or clears the session cookie. It
// has no Expires: the browser drops it when closed, the server sooner.
func setSessionCookie(w http.ResponseWriter, secret string) {
	c := &http.Cookie{Name: SessionCookie, Value: secret, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode}
	if secret == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}
