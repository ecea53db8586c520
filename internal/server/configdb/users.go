package configdb

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"
)

// User is a local user of the web console. Its password hash and TOTP
// key are only in UserCredentials.
type User struct {
	ID           int64
	Name         string
	Role         Role
	TOTP         bool // a TOTP key is set: logins need a code
	FailedLogins int  // consecutive failures since the last success or lock
	LockedUntil  time.Time
	Created      time.Time
	Updated      time.Time
	LastLogin    time.Time // zero: never
}

// UserCredentials is a user with what a login checks.
type UserCredentials struct {
	User
	PasswordHash string // argon2id PHC string (internal/passhash)
	TOTPKey      []byte // nil: no TOTP
}

const userCols = "id, name, role, totp_secret IS NOT NULL, failed_logins, locked_until, created_at, updated_at, last_login_at"

func scanUser(sc interface{ Scan(...any) error }, u *User, extra ...any) error {
	var role string
	dest := append([]any{&u.ID, &u.Name, &role, &u.TOTP, &u.FailedLogins, timeCol{&u.LockedUntil},
		timeCol{&u.Created}, timeCol{&u.Updated}, timeCol{&u.LastLogin}}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return err
	}
	u.Role = Role(role)
	return nil
}

// totpAD is the associated data sealing user id's TOTP key.
func totpAD(id int64) string { return "user-totp:" + strconv.FormatInt(id, 10) }

// CreateUser creates a user with a password hash (internal/passhash). A
// second user of the same name is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, name string, role Role, passwordHash string) (User, error) {
	if strings.TrimSpace(name) == "" {
		return User{}, invalid("user name is empty")
	}
	if !role.Valid() {
		return User{}, invalid("user role %q", role)
	}
	if passwordHash == "" {
		return User{}, invalid("user %s has no password", name)
	}
	now := s.timestamp()
	_, err := s.exec(ctx, s.db, `INSERT INTO users (name, role, password_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?)`, name, string(role), passwordHash, now, now)
	if err != nil {
		return User{}, s.wrapNamed("create user "+name, name, err)
	}
	return s.GetUser(ctx, name)
}

// GetUser returns the user called name.
func (s *Store) GetUser(ctx context.Context, name string) (User, error) {
	var u User
	err := scanUser(s.queryRow(ctx, s.db, "SELECT "+userCols+" FROM users WHERE name = ?", name), &u)
	return u, s.wrap("user "+name, err)
}

// ListUsers lists the users by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+userCols+" FROM users ORDER BY name")
	if err != nil {
		return nil, s.wrap("list users", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		if err := scanUser(rows, &u); err != nil {
			return nil, s.wrap("list users", err)
		}
		out = append(out, u)
	}
	return out, s.wrap("list users", rows.Err())
}

// UserCredentials returns user name with its password hash and TOTP key
// (unsealed: needs the master key when the user has one).
func (s *Store) UserCredentials(ctx context.Context, name string) (UserCredentials, error) {
	var c UserCredentials
	var sealed []byte
	err := scanUser(s.queryRow(ctx, s.db, "SELECT "+userCols+", password_hash, totp_secret FROM users WHERE name = ?", name),
		&c.User, &c.PasswordHash, &sealed)
	if err != nil {
		return UserCredentials{}, s.wrap("user "+name, err)
	}
	if sealed != nil {
		if c.TOTPKey, err = s.unseal(sealed, totpAD(c.ID)); err != nil {
			return UserCredentials{}, errors.Join(errors.New("configdb: TOTP key of user "+name), err)
		}
	}
	return c, nil
}

// SetUserPassword replaces user name's password hash, clears its lock and
// ends its login sessions.
func (s *Store) SetUserPassword(ctx context.Context, name, passwordHash string) error {
	return s.ChangeUserPassword(ctx, name, passwordHash, 0)
}

// ChangeUserPassword is SetUserPassword that keeps one login session, the
// one with ID keepSession (the user's own, changing its password); 0
// keeps none.
func (s *Store) ChangeUserPassword(ctx context.Context, name, passwordHash string, keepSession int64) error {
	if passwordHash == "" {
		return invalid("user %s: empty password hash", name)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		id, err := s.userID(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL,
			updated_at = ? WHERE id = ?`, passwordHash, s.timestamp(), id); err != nil {
			return s.wrap("set password of user "+name, err)
		}
		_, err = s.exec(ctx, tx, "DELETE FROM login_sessions WHERE user_id = ? AND id <> ?", id, keepSession)
		return s.wrap("end sessions of user "+name, err)
	})
}

// SetUserTOTP sets user name's TOTP key, sealed with the master key; nil
// removes it.
func (s *Store) SetUserTOTP(ctx context.Context, name string, key []byte) error {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return err
	}
	var sealed any
	if key != nil {
		b, err := s.seal(key, totpAD(u.ID))
		if err != nil {
			return err
		}
		sealed = b
	}
	return s.execOne(ctx, "set TOTP of user "+name, "UPDATE users SET totp_secret = ?, totp_last_step = 0, updated_at = ? WHERE id = ?",
		sealed, s.timestamp(), u.ID)
}

// UseTOTPStep records that user id logged in with the TOTP code of time
// step (Unix time / period) and reports whether that step is newer than
// any used before: a code, and every older one, is good once (RFC 6238
// section 5.2).
func (s *Store) UseTOTPStep(ctx context.Context, id, step int64) (bool, error) {
	res, err := s.exec(ctx, s.db, "UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?", step, id, step)
	if err != nil {
		return false, s.wrap("record TOTP use", err)
	}
	n, err := res.RowsAffected()
	return n == 1, s.wrap("record TOTP use", err)
}

// DeleteUser deletes user name and its login sessions.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.execOne(ctx, "delete user "+name, "DELETE FROM users WHERE name = ?", name)
}

func (s *Store) userID(ctx context.Context, q querier, name string) (int64, error) {
	var id int64
	err := s.queryRow(ctx, q, "SELECT id FROM users WHERE name = ?", name).Scan(&id)
	return id, s.wrap("user "+name, err)
}

// LoginFailed counts a failed login of user id; at limit consecutive
// failures the user is locked for lockFor (and the count starts again). It
// returns the time the user is locked until (zero: not locked).
func (s *Store) LoginFailed(ctx context.Context, id int64, limit int, lockFor time.Duration) (time.Time, error) {
	var until time.Time
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		err := s.queryRow(ctx, tx, "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins", id).Scan(&n)
		if err != nil {
			return s.wrap("record failed login", err)
		}
		if n < limit {
			return nil
		}
		until = s.timestamp().Add(lockFor)
		_, err = s.exec(ctx, tx, "UPDATE users SET failed_logins = 0, locked_until = ? WHERE id = ?", until, id)
		return s.wrap("lock user", err)
	})
	return until, err
}

// LoginSucceeded records a successful login of user id: the failure count
// starts again.
func (s *Store) LoginSucceeded(ctx context.Context, id int64) error {
	return s.execOne(ctx, "record login", "UPDATE users SET failed_logins = 0, last_login_at = ? WHERE id = ?",
		s.timestamp(), id)
}
