package apitypes

import "time"

// UserRequest is the body of POST /api/v1/users.
type UserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`     // administrator, backup_operator, restore_operator or viewer
	Password string `json:"password"` // stored as an argon2id hash only
}

// PasswordRequest is the body of PUT /api/v1/users/{name}/password.
type PasswordRequest struct {
	Password string `json:"password"`
}

// OwnPasswordRequest is the body of PUT /api/v1/me/password: the user's
// current password and the new one.
type OwnPasswordRequest struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// User is a console user as listed (never its password hash or TOTP key).
type User struct {
	Name        string     `json:"name"`
	Role        string     `json:"role"`
	TOTP        bool       `json:"totp"`
	LockedUntil *time.Time `json:"locked_until,omitempty"` // set while locked out
	Created     time.Time  `json:"created"`
	LastLogin   *time.Time `json:"last_login,omitempty"`
}

// TOTPKey answers POST /api/v1/users/{name}/totp: the new key, this once.
type TOTPKey struct {
	Secret string `json:"secret"` // base32, for manual entry
	URL    string `json:"url"`    // otpauth:// URL, for a QR code
	QRSVG  string `json:"qr_svg"` // the URL as a QR code, an SVG document
}

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"` // the current code, for a user with TOTP
}

// Me answers GET /api/v1/me and POST /api/v1/login: who the caller is.
type Me struct {
	Name string `json:"name"` // the user, or the API token's name
	Role string `json:"role"`
	Kind string `json:"kind"` // "session" (login cookie) or "token" (bearer token)
	// CSRFToken is set for a login session: send it in the X-CSRF-Token
	// header with every POST, PUT and DELETE.
	CSRFToken string     `json:"csrf_token,omitempty"`
	Expires   *time.Time `json:"expires,omitempty"` // the session's expiry if idle from now
}
