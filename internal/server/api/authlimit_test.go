package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestAuthFailureLimit: after Burst failed authentications from one
// address, that address gets 429 with Retry-After (even with a good token)
// until the bucket refills; other addresses are not affected.
func TestAuthFailureLimit(t *testing.T) {
	e := newEnv(t)
	clk := clock.NewFake(time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC))
	srv := New(e.store, Config{Clock: clk, Logger: slog.New(slog.DiscardHandler), CA: e.ca,
		AuthFailures: AuthFailureLimit{Burst: 5, Refill: 2 * time.Second}})
	good := e.tokens[configdb.RoleViewer]
	do := func(addr, token, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = addr
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
	const attacker, other = "203.0.113.7:40000", "198.51.100.2:50000"
	for i := range 5 {
		if rec := do(attacker, "hfa_wrong"+strconv.Itoa(i), "/api/v1/jobs"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, rec.Code)
		}
	}
	for i := range 300 {
		rec := do(attacker, "hfa_wrong", "/api/v1/jobs")
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("request %d after the burst: status %d, want 429", i+1, rec.Code)
		}
	}
	rec := do(attacker, good, "/api/v1/jobs")
	checkError(t, rec, http.StatusTooManyRequests, "too_many_failures")
	if got := rec.Header().Get("Retry-After"); got != "2" {
		t.Fatalf("Retry-After %q, want 2", got)
	}
	if rec := do(other, good, "/api/v1/jobs"); rec.Code != http.StatusOK {
		t.Fatalf("another address with a good token: status %d, want 200", rec.Code)
	}
	if rec := do(attacker, "", "/api/v1/health"); rec.Code != http.StatusOK {
		t.Fatalf("public route from a blocked address: status %d, want 200", rec.Code)
	}
	// Same /64: the same source; another IPv6 /64 is not.
	for range 5 {
		do("[2001:db8:1:2::1]:1", "bad", "/api/v1/jobs")
	}
	if rec := do("[2001:db8:1:2::99]:1", good, "/api/v1/jobs"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("same IPv6 /64: status %d, want 429", rec.Code)
	}
	if rec := do("[2001:db8:1:3::1]:1", good, "/api/v1/jobs"); rec.Code != http.StatusOK {
		t.Fatalf("other IPv6 /64: status %d, want 200", rec.Code)
	}

	clk.Advance(2 * time.Second) // one failure's worth refilled
	if rec := do(attacker, good, "/api/v1/jobs"); rec.Code != http.StatusOK {
		t.Fatalf("after Retry-After with a good token: status %d, want 200", rec.Code)
	}
	if rec := do(attacker, "bad", "/api/v1/jobs"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("one more failure allowed: status %d, want 401", rec.Code)
	}
	if rec := do(attacker, good, "/api/v1/jobs"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("blocked again: status %d, want 429", rec.Code)
	}
	// Join tokens count too.
	body := joinBody(t, "hfj_guess", "proxy", "p1", "")
	for range 5 {
		req := httptest.NewRequest("POST", "/api/v1/agents/join", strings.NewReader(body))
		req.RemoteAddr = "192.0.2.50:1"
		srv.ServeHTTP(httptest.NewRecorder(), req)
	}
	req := httptest.NewRequest("POST", "/api/v1/agents/join", strings.NewReader(body))
	req.RemoteAddr = "192.0.2.50:1"
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("join after 5 bad join tokens: status %d, want 429 (%s)", rec.Code, rec.Body)
	}
}

// TestAuthFailureLimitSparesAgents: a revoked agent's certificate failures
// neither count nor get throttled (certificates cannot be guessed).
func TestAuthFailureLimitSparesAgents(t *testing.T) {
	e := newEnv(t)
	srv := New(e.store, Config{Logger: slog.New(slog.DiscardHandler), CA: e.ca, AuthFailures: AuthFailureLimit{Burst: 2}})
	for i := range 5 {
		req := httptest.NewRequest("POST", "/api/v1/agents/heartbeat", strings.NewReader("{}"))
		req.RemoteAddr = "192.0.2.9:1"
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("heartbeat %d without a certificate: status %d, want 401", i+1, rec.Code)
		}
	}
	req := httptest.NewRequest("GET", "/api/v1/jobs", nil)
	req.RemoteAddr = "192.0.2.9:1"
	req.Header.Set("Authorization", "Bearer "+e.tokens[configdb.RoleViewer])
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("API token from that address: status %d, want 200", rec.Code)
	}
}
