package configdb

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

const fakeHash = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA"

func testUsers(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "alice", RoleBackupOperator, fakeHash)
	if err != nil || u.Name != "alice" || u.Role != RoleBackupOperator || u.TOTP || u.ID == 0 || u.Created.IsZero() {
		t.Fatalf("CreateUser: %+v %v", u, err)
	}
	_, err = s.CreateUser(ctx, "alice", RoleViewer, fakeHash)
	checkConflict(t, "duplicate user", err, "a user named alice already exists")
	for _, bad := range []struct {
		name string
		role Role
		hash string
	}{{"", RoleViewer, fakeHash}, {"bob", "root", fakeHash}, {"bob", RoleViewer, ""}} {
		if _, err := s.CreateUser(ctx, bad.name, bad.role, bad.hash); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateUser(%q, %q, %q): %v, want ErrInvalid", bad.name, bad.role, bad.hash, err)
		}
	}
	if _, err := s.CreateUser(ctx, "bob", RoleViewer, fakeHash); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListUsers(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
		t.Fatalf("ListUsers: %+v %v", list, err)
	}
	if _, err := s.GetUser(ctx, "carol"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetUser missing: %v", err)
	}

	// TOTP keys are sealed: not in the table in clear, back out intact.
	key := []byte("totp-key-0123456789abcdef")
	if err := s.SetUserTOTP(ctx, "alice", key); err != nil {
		t.Fatal(err)
	}
	if dump := dumpTable(t, s, "users"); strings.Contains(dump, string(key)) {
		t.Fatalf("users table holds the TOTP key in clear: %s", dump)
	}
	c, err := s.UserCredentials(ctx, "alice")
	if err != nil || !bytes.Equal(c.TOTPKey, key) || c.PasswordHash != fakeHash || !c.TOTP {
		t.Fatalf("UserCredentials: %+v %v", c, err)
	}
	for _, tc := range []struct {
		step int64
		ok   bool
	}{{100, true}, {100, false}, {99, false}, {101, true}} {
		if ok, err := s.UseTOTPStep(ctx, u.ID, tc.step); err != nil || ok != tc.ok {
			t.Fatalf("UseTOTPStep(%d) = %v, %v; want %v", tc.step, ok, err, tc.ok)
		}
	}
	if err := s.SetUserTOTP(ctx, "alice", key); err != nil { // a new key starts afresh
		t.Fatal(err)
	}
	if ok, err := s.UseTOTPStep(ctx, u.ID, 50); err != nil || !ok {
		t.Fatalf("UseTOTPStep after a new key = %v, %v", ok, err)
	}
	if err := s.SetUserTOTP(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.UserCredentials(ctx, "alice"); c.TOTPKey != nil || c.TOTP {
		t.Fatalf("TOTP not removed: %+v", c)
	}
	if err := s.SetUserTOTP(ctx, "carol", key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetUserTOTP missing: %v", err)
	}

	// Lock-out: the third consecutive failure locks; a success resets the count.
	if until, err := s.LoginFailed(ctx, u.ID, 3, time.Minute); err != nil || !until.IsZero() {
		t.Fatalf("first failure: %v %v", until, err)
	}
	if err := s.LoginSucceeded(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		until, err := s.LoginFailed(ctx, u.ID, 3, time.Minute)
		if err != nil || until.IsZero() != (i < 2) {
			t.Fatalf("failure %d: %v %v", i+1, until, err)
		}
	}
	got, _ := s.GetUser(ctx, "alice")
	if !got.LockedUntil.Equal(clk.now().UTC().Truncate(time.Microsecond).Add(time.Minute)) || got.FailedLogins != 0 || got.LastLogin.IsZero() {
		t.Fatalf("after lock: %+v", got)
	}
	// A new password clears the lock.
	if err := s.SetUserPassword(ctx, "alice", fakeHash+"B"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.UserCredentials(ctx, "alice"); !c.LockedUntil.IsZero() || c.PasswordHash != fakeHash+"B" {
		t.Fatalf("after new password: %+v", c)
	}
	if err := s.SetUserPassword(ctx, "carol", fakeHash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetUserPassword missing: %v", err)
	}
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func testLoginSessions(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "alice", RoleViewer, fakeHash)
	if err != nil {
		t.Fatal(err)
	}
	const idle, maxAge = 30 * time.Minute, 2 * time.Hour
	if _, _, err := s.CreateLoginSession(ctx, u.ID, 0, maxAge); !errors.Is(err, ErrInvalid) {
		t.Fatalf("zero idle: %v", err)
	}
	sec, exp, err := s.CreateLoginSession(ctx, u.ID, idle, maxAge)
	if err != nil || !strings.HasPrefix(sec, loginSessionPrefix) || len(sec) < 40 || !exp.After(clk.now()) {
		t.Fatalf("CreateLoginSession: %q %v %v", sec, exp, err)
	}
	if dump := dumpTable(t, s, "login_sessions"); strings.Contains(dump, sec) || strings.Contains(dump, sec[4:]) {
		t.Fatalf("login_sessions holds the secret in clear: %s", dump)
	}
	p, err := s.AuthenticateSession(ctx, sec, idle)
	if err != nil || p.User != "alice" || p.Name != "user:alice" || p.Role != RoleViewer || p.UserID != u.ID || p.SessionID == 0 || p.TokenID != 0 {
		t.Fatalf("AuthenticateSession: %+v %v", p, err)
	}
	for _, bad := range []string{"", sec + "x", sec[:len(sec)-1], "hfa_x", "hfs_" + strings.Repeat("A", 43)} {
		if _, err := s.AuthenticateSession(ctx, bad, idle); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("AuthenticateSession(%q): %v", bad, err)
		}
	}
	// Use keeps it alive past the idle timeout, up to the absolute limit.
	for range 4 {
		clk.advance(25 * time.Minute)
		if _, err := s.AuthenticateSession(ctx, sec, idle); err != nil {
			t.Fatalf("session in use expired: %v", err)
		}
	}
	clk.advance(25 * time.Minute) // 125 min > maxAge
	if _, err := s.AuthenticateSession(ctx, sec, idle); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("session past its absolute lifetime: %v", err)
	}
	// Idle timeout.
	sec2, _, _ := s.CreateLoginSession(ctx, u.ID, idle, maxAge)
	clk.advance(idle)
	if _, err := s.AuthenticateSession(ctx, sec2, idle); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("idle session: %v", err)
	}
	// Logout, and a new password or deleting the user ends sessions.
	sec3, _, _ := s.CreateLoginSession(ctx, u.ID, idle, maxAge)
	if n, err := s.CountLoginSessions(ctx, "alice"); err != nil || n != 1 {
		t.Fatalf("CountLoginSessions: %d %v", n, err)
	}
	if err := s.DeleteLoginSession(ctx, sec3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLoginSession(ctx, sec3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second logout: %v", err)
	}
	sec4, _, _ := s.CreateLoginSession(ctx, u.ID, idle, maxAge)
	if err := s.SetUserPassword(ctx, "alice", fakeHash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateSession(ctx, sec4, idle); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("session after password change: %v", err)
	}
	// The user's own change keeps the session it is made in.
	keep, _, _ := s.CreateLoginSession(ctx, u.ID, idle, maxAge)
	other, _, _ := s.CreateLoginSession(ctx, u.ID, idle, maxAge)
	kp, err := s.AuthenticateSession(ctx, keep, idle)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ChangeUserPassword(ctx, "alice", fakeHash+"C", kp.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateSession(ctx, keep, idle); err != nil {
		t.Fatalf("the kept session: %v", err)
	}
	if _, err := s.AuthenticateSession(ctx, other, idle); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("another session after the user's change: %v", err)
	}
	sec5, _, _ := s.CreateLoginSession(ctx, u.ID, idle, maxAge)
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateSession(ctx, sec5, idle); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("session of a deleted user: %v", err)
	}
}
