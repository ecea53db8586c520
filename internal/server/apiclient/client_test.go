package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// TestDo: requests carry the JSON body and the bearer token; answers
// decode into the apitypes; error answers become *apitypes.Error matching
// the status sentinels, never showing the token.
func TestDo(t *testing.T) {
	const token = "hfa_secret-token"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(apitypes.ErrorBody{Error: "unknown token", Code: "unauthorized"})
			return
		}
		switch r.URL.Path {
		case "/api/v1/tokens":
			var req apitypes.TokenRequest
			if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			_ = json.NewEncoder(w).Encode(apitypes.NewToken{Name: req.Name, Role: req.Role, Token: "t"})
		case "/api/v1/conflict":
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(apitypes.ErrorBody{Error: "stale attempt", Code: "stale_attempt"})
		case "/api/v1/forbidden":
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(apitypes.ErrorBody{Error: "no", Code: "forbidden"})
		case "/api/v1/plain":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(apitypes.ErrorBody{Error: "no route", Code: "not_found"})
		}
	}))
	defer ts.Close()
	ctx := context.Background()
	c := New(ts.URL+"/", ts.Client(), token)

	var tok apitypes.NewToken
	if err := c.Do(ctx, "POST", "/api/v1/tokens", apitypes.TokenRequest{Name: "ci", Role: "viewer"}, &tok); err != nil ||
		tok.Name != "ci" || tok.Role != "viewer" {
		t.Fatalf("Do = %+v, %v", tok, err)
	}
	var raw json.RawMessage
	if err := c.Do(ctx, "POST", "/api/v1/tokens", apitypes.TokenRequest{Name: "x"}, &raw); err != nil || !strings.Contains(string(raw), `"x"`) {
		t.Fatalf("raw answer %s, %v", raw, err)
	}
	tests := []struct {
		client   *Client
		path     string
		status   int
		code     string
		sentinel error
	}{
		{c, "/api/v1/conflict", 409, "stale_attempt", apitypes.ErrConflict},
		{c, "/api/v1/forbidden", 403, "forbidden", apitypes.ErrRefused},
		{c, "/api/v1/nothing", 404, "not_found", apitypes.ErrNotFound},
		{c, "/api/v1/plain", 502, "", nil},
		{New(ts.URL, ts.Client(), "wrong"), "/api/v1/tokens", 401, "unauthorized", apitypes.ErrRefused},
	}
	for _, tc := range tests {
		err := tc.client.Do(ctx, "GET", tc.path, nil, nil)
		var ae *apitypes.Error
		if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code {
			t.Errorf("%s: %v (%+v), want status %d code %q", tc.path, err, ae, tc.status, tc.code)
			continue
		}
		if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
			t.Errorf("%s: %v does not match %v", tc.path, err, tc.sentinel)
		}
		for _, other := range []error{apitypes.ErrConflict, apitypes.ErrRefused, apitypes.ErrNotFound} {
			if other != tc.sentinel && errors.Is(err, other) {
				t.Errorf("%s: %v matches %v too", tc.path, err, other)
			}
		}
		if !strings.Contains(err.Error(), "HTTP") || strings.Contains(err.Error(), token) {
			t.Errorf("%s: message %q", tc.path, err)
		}
		if refused := strings.HasPrefix(err.Error(), "refused by the server: "); refused != (tc.sentinel == apitypes.ErrRefused) {
			t.Errorf("%s: message %q", tc.path, err)
		}
	}
	if ae := (*apitypes.Error)(nil); errors.As(c.Do(ctx, "GET", "/api/v1/plain", nil, nil), &ae) && ae.Message != "Bad Gateway" {
		t.Errorf("an answer without a body: message %q, want the status text", ae.Message)
	}
}
