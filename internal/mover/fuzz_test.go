package mover

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

// FuzzMoverRequests sends arbitrary bodies and path segments to every
// endpoint of a live server with an open session: the handler must answer
// each with a client error or success, never panic or fail internally.
func FuzzMoverRequests(f *testing.F) {
	r := testrepo.New(f, nil)
	srv, err := NewServer(map[string]*repo.Repository{"main": r}, ServerOptions{MaxSessions: 8, SessionTTL: time.Minute})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	index, _ := (&repo.Index{DiskSize: 3 * cs, ChunkSize: cs, Entries: []repo.IndexEntry{{N: 1, ID: repo.ChunkID{7}}}}).MarshalBinary()
	session, _ := json.Marshal(sessionRequest{RequestID: randomID(), Kind: "shared"})
	f.Add(uint8(0), "", make([]byte, 64))
	f.Add(uint8(1), repo.ChunkID{1}.String(), []byte("HFB1\x01\x02\x00\x00"))
	f.Add(uint8(2), "0123456789abcdef", index)
	f.Add(uint8(3), "1", index)
	f.Add(uint8(4), "", manifestJSON(f, "0123456789abcdef", 1))
	f.Add(uint8(5), "", session)
	f.Add(uint8(6), "0123456789abcdef", []byte(nil))
	f.Add(uint8(7), "../../config", []byte(nil))
	f.Add(uint8(8), "%2e%2e", []byte{0})
	f.Add(uint8(9), randomID(), []byte(nil))
	// Each target is "METHOD path"; {sid} is a live session, {arg} the
	// fuzzed path segment.
	targets := []string{
		"POST sessions/{sid}/has",
		"PUT sessions/{sid}/chunks/{arg}",
		"PUT sessions/{sid}/points/{arg}/disks/0/index",
		"PUT sessions/{sid}/points/0123456789abcdef/disks/{arg}/index",
		"POST sessions/{sid}/commit",
		"POST sessions",
		"GET points/{arg}/disks/0/index",
		"GET chunks/{arg}",
		"POST sessions/{arg}/has",
		"DELETE sessions/{arg}",
	}
	// Malformed input gets a client error or success, never a 500.
	allowed := map[int]bool{200: true, 201: true, 204: true, 400: true, 404: true, 405: true,
		409: true, 413: true, 422: true, 503: true}
	f.Fuzz(func(t *testing.T, op uint8, arg string, body []byte) {
		k := int(op) % len(targets)
		method, p, _ := strings.Cut(targets[k], " ")
		p = strings.NewReplacer("{sid}", fuzzSession(t, srv), "{arg}", url.PathEscape(arg)).Replace(p)
		u := "http://agent" + APIPrefix + "main/" + p
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("%s %s with %d bytes: status %d: %s", method, u, len(body), rec.Code, rec.Body.Bytes())
		}
		if rec.Code == 200 && k == 0 && rec.Body.Len() != (len(body)/32+7)/8 {
			t.Fatalf("has reply of %d bytes for %d ids", rec.Body.Len(), len(body)/32)
		}
	})
}

// fuzzSession returns a live session, starting one if needed.
func fuzzSession(t *testing.T, srv *Server) string {
	srv.mu.Lock()
	for id, s := range srv.sessions {
		s.mu.Lock()
		active := s.state == stateActive
		s.mu.Unlock()
		if active {
			srv.mu.Unlock()
			return id
		}
	}
	srv.mu.Unlock()
	body, _ := json.Marshal(sessionRequest{RequestID: randomID(), Kind: "shared"})
	req := httptest.NewRequest("POST", APIPrefix+"main/sessions", bytes.NewReader(body))
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	var sr sessionResponse
	if rec.Code == http.StatusServiceUnavailable { // full of committed sessions
		srv.Close()
		srv.mu.Lock()
		srv.closed = false
		srv.mu.Unlock()
		return fuzzSession(t, srv)
	}
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &sr) != nil {
		t.Fatalf("start session: %d %s", rec.Code, rec.Body.Bytes())
	}
	return sr.Session
}
