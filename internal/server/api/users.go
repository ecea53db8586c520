package api

import (
	"net/http"
	"unicode/utf8"

	"github.com/pquerna/otp/totp"

	"github.com/holdfast-backup/holdfast/internal/passhash"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// MinPasswordLength is the shortest user password accepted, in characters.
const MinPasswordLength = 12

// totpIssuer names Holdfast in authenticator apps.
const totpIssuer = "Holdfast"

func checkPassword(pw string) error {
	if utf8.RuneCountInString(pw) < MinPasswordLength {
		return badRequest("password: want at least %d characters", MinPasswordLength)
	}
	if len(pw) > passhash.MaxPassword {
		return badRequest("password: want at most %d bytes", passhash.MaxPassword)
	}
	return nil
}

func viewUser(u configdb.User) apitypes.User {
	return apitypes.User{Name: u.Name, Role: string(u.Role), TOTP: u.TOTP, Created: u.Created,
		LockedUntil: optTime(u.LockedUntil), LastLogin: optTime(u.LastLogin)}
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req apitypes.UserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkName("user", req.Name); err != nil {
		return err
	}
	role := configdb.Role(req.Role)
	if !role.Valid() {
		return badRequest("role %q: want administrator, backup_operator, restore_operator or viewer", req.Role)
	}
	if err := checkPassword(req.Password); err != nil {
		return err
	}
	hash, err := passhash.New(req.Password, s.logins.Hash)
	if err != nil {
		return err
	}
	u, err := s.store.CreateUser(r.Context(), req.Name, role, hash)
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "user.create", req.Name, map[string]any{"role": req.Role}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, viewUser(u))
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	us, err := s.store.ListUsers(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(us, viewUser))
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	u, err := s.store.GetUser(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewUser(u))
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	name := r.PathValue("name")
	if err := s.store.DeleteUser(r.Context(), name); err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "user.delete", name, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setUserPassword sets a new password: the user's lock is cleared and its
// login sessions end.
func (s *Server) setUserPassword(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	name := r.PathValue("name")
	var req apitypes.PasswordRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkPassword(req.Password); err != nil {
		return err
	}
	hash, err := passhash.New(req.Password, s.logins.Hash)
	if err != nil {
		return err
	}
	if err := s.store.SetUserPassword(r.Context(), name, hash); err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "user.password", name, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// enableTOTP gives a user a new TOTP key (replacing any) and returns it,
// this once.
func (s *Server) enableTOTP(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	name := r.PathValue("name")
	key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: name})
	if err != nil {
		return err
	}
	svg, err := qrSVG(key.URL())
	if err != nil {
		return err
	}
	if err := s.store.SetUserTOTP(r.Context(), name, []byte(key.Secret())); err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "user.totp.enable", name, nil); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apitypes.TOTPKey{Secret: key.Secret(), URL: key.URL(), QRSVG: svg})
	return nil
}

func (s *Server) disableTOTP(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	name := r.PathValue("name")
	if err := s.store.SetUserTOTP(r.Context(), name, nil); err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "user.totp.disable", name, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
