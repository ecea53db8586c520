package nbd

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// TestServerConnections: the server lists its open connections — who,
// on which export, since when — and forgets them when they close.
func TestServerConnections(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	rw, _ := sparseExport(t, "rw", true)
	s, network, addr := serveT(t, false, ServerOptions{Clock: clk}, rw)
	if got := s.Connections(); len(got) != 0 {
		t.Fatalf("connections before any client: %+v", got)
	}
	c := dialT(t, nbdURL(network, addr, "rw"), ClientOptions{})
	raw, err := net.Dial("tcp", addr) // stays in the handshake
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	got := waitConnections(t, s, func(c []ConnInfo) bool { return len(c) == 2 && c[0].Export+c[1].Export == "rw" })
	exports := map[string]bool{}
	for _, ci := range got {
		exports[ci.Export] = true
		if !strings.HasPrefix(ci.Remote, "127.0.0.1:") || ci.Local != addr || !ci.Since.Equal(clk.Now()) {
			t.Errorf("connection %+v", ci)
		}
	}
	if !exports["rw"] || !exports[""] {
		t.Errorf("exports of the connections: %v, want rw and one in the handshake", exports)
	}
	c.Close()
	raw.Close()
	waitConnections(t, s, func(c []ConnInfo) bool { return len(c) == 0 })
}

// waitConnections waits until s's connections satisfy ok and returns them.
func waitConnections(t *testing.T, s *Server, ok func([]ConnInfo) bool) []ConnInfo {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.Connections()
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
