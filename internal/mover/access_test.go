package mover

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// grant authorizes every client with acc.
func grant(acc Access) func(*http.Request, string) (Access, error) {
	return func(*http.Request, string) (Access, error) { return acc, nil }
}

// locks counts the lock files in e's repository.
func (e *env) locks(t *testing.T) int {
	t.Helper()
	n := 0
	err := e.repo.Backend().List(context.Background(), "locks", func(storage.FileInfo) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSessionsPerClientBounded(t *testing.T) {
	e := newEnv(t, nil, ServerOptions{Authorize: grant(Access{Sessions: 3})})
	for range 3 {
		e.startSession(t)
	}
	body, _ := json.Marshal(sessionRequest{RequestID: randomID(), Kind: repo.LockShared})
	st, code, b := e.request(t, http.MethodPost, APIPrefix+"main/sessions", body)
	if st != http.StatusTooManyRequests || code != codeTooManySessions {
		t.Fatalf("fourth session of one client: %d %s %s, want 429 %s", st, code, b, codeTooManySessions)
	}
	c := e.dial(t, e.ts.URL, func(o *ClientOptions) { o.Retry.Attempts = 1 })
	if _, err := c.Lock(context.Background(), repo.LockShared); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("Lock beyond the bound: %v, want ErrTooManySessions", err)
	}
	// Another client is not held back by the first one's sessions.
	e.startSessionAs(t, e.peerTLS(t, "proxy2"), false)
	if n := e.locks(t); n != 4 {
		t.Fatalf("%d locks, want 4", n)
	}
}

func TestNoSessionsWithoutGrant(t *testing.T) {
	e := newEnv(t, nil, ServerOptions{Authorize: grant(Access{})})
	body, _ := json.Marshal(sessionRequest{RequestID: randomID(), Kind: repo.LockShared})
	if st, code, _ := e.request(t, http.MethodPost, APIPrefix+"main/sessions", body); st != http.StatusForbidden || code != codeForbidden {
		t.Fatalf("session without a grant: %d %s, want 403", st, code)
	}
	if e.locks(t) != 0 {
		t.Fatal("a refused session left a lock")
	}
}

func TestListPointsNeedsGrant(t *testing.T) {
	for _, tc := range []struct {
		name string
		acc  Access
		want int
	}{
		{"granted", Access{ListPoints: true}, http.StatusOK},
		{"not granted", Access{Sessions: 4}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, ServerOptions{Authorize: grant(tc.acc)})
			if st, _, b := e.request(t, http.MethodGet, APIPrefix+"main/points", nil); st != tc.want {
				t.Fatalf("GET points: %d %s, want %d", st, b, tc.want)
			}
		})
	}
}

func TestEndSessionsReleasesLocks(t *testing.T) {
	e := newEnv(t, nil, ServerOptions{})
	var revoked []string
	for range 3 {
		revoked = append(revoked, e.startSession(t))
	}
	other := e.peerTLS(t, "proxy2")
	kept := e.startSessionAs(t, other, false)
	sum := sha256.Sum256(e.tls.Certificates[0].Certificate[0])
	revokedPeer := "sha256:" + hex.EncodeToString(sum[:])
	if n := e.srv.EndSessions(func(owner string) bool { return owner != revokedPeer }); n != 3 {
		t.Fatalf("EndSessions ended %d sessions, want 3", n)
	}
	if n := e.locks(t); n != 1 {
		t.Fatalf("%d locks after ending the revoked client's sessions, want 1", n)
	}
	for _, sid := range revoked {
		if st, code, _ := e.request(t, http.MethodPost, APIPrefix+"main/sessions/"+sid+"/keepalive", nil); st != http.StatusNotFound {
			t.Fatalf("keepalive of an ended session: %d %s, want 404", st, code)
		}
	}
	if st, _, b := e.requestAs(t, other, http.MethodPost, APIPrefix+"main/sessions/"+kept+"/keepalive", nil); st != http.StatusNoContent {
		t.Fatalf("keepalive of the kept session: %d %s", st, b)
	}
}
