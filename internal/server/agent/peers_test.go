package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// joinAs joins the test server as role name and returns the credentials.
func joinAs(t *testing.T, ts *httptest.Server, ca *pki.CA, store *configdb.Store, role, name string) *Credentials {
	t.Helper()
	ctx := context.Background()
	tok, err := store.CreateJoinToken(ctx, role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Join(ctx, ts.URL, ca.CertPEM(), role, name, tok, "127.0.0.1:1", 1)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// connState is the state of a connection whose client presented c.
func connState(t *testing.T, c *Credentials) *tls.ConnectionState {
	t.Helper()
	leaf, err := pki.ParseCertificatePEM(c.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}
}

func fingerprint(t *testing.T, c *Credentials) string {
	t.Helper()
	leaf, err := pki.ParseCertificatePEM(c.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pki.Fingerprint(leaf)
}

// TestHeartbeatVouchesForPeers: a repository agent's heartbeat reply lists
// the server and each proxy's current certificate, and a re-join replaces
// the old one; the set then refuses the superseded certificate.
func TestHeartbeatVouchesForPeers(t *testing.T) {
	ts, ca, store := testServer(t)
	ctx := context.Background()
	repoCreds := joinAs(t, ts, ca, store, pki.RoleRepository, "repo1")
	old := joinAs(t, ts, ca, store, pki.RoleProxy, "p1")
	c, err := NewClient(ts.URL, repoCreds)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var revokedEnded []string
	peers := NewPeerSet(PeerSetOptions{
		Refresh: func(ctx context.Context) error { return c.Heartbeat(ctx, "", 0) },
		OnUpdate: func(valid func(string) bool) {
			if !valid(fingerprint(t, old)) {
				revokedEnded = append(revokedEnded, "p1-old")
			}
		},
	})
	var roles []string
	c.OnReply(func(r apitypes.HeartbeatReply) {
		roles = roles[:0]
		for _, p := range r.Peers {
			roles = append(roles, p.Role+"/"+p.Name)
		}
		peers.Update(r.Peers)
	})

	// Nothing known yet: the miss asks the server, which vouches for p1.
	pe, err := peers.Check(ctx, connState(t, old))
	if err != nil || pe.Role != pki.RoleProxy || pe.Name != "p1" {
		t.Fatalf("Check of the current proxy certificate: %+v %v", pe, err)
	}
	if err := c.Heartbeat(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	slices.Sort(roles)
	if !slices.Equal(roles, []string{"proxy/p1", "server/"}) {
		t.Fatalf("peers in the heartbeat reply: %v, want the proxy and the server (no repository)", roles)
	}

	// Re-join: the old certificate is refused, the new one accepted.
	current := joinAs(t, ts, ca, store, pki.RoleProxy, "p1")
	if err := c.Heartbeat(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	if len(revokedEnded) == 0 {
		t.Fatal("OnUpdate did not see the old certificate become invalid")
	}
	if _, err := peers.Check(ctx, connState(t, old)); !errors.Is(err, ErrNotVouched) {
		t.Fatalf("Check of the superseded certificate: %v, want ErrNotVouched", err)
	}
	if _, err := peers.Check(ctx, connState(t, current)); err != nil {
		t.Fatalf("Check of the new certificate: %v", err)
	}
	// Another repository's certificate, though issued, is never vouched for.
	if _, err := peers.Check(ctx, connState(t, repoCreds)); !errors.Is(err, ErrNotVouched) {
		t.Fatalf("Check of a repository certificate: %v, want ErrNotVouched", err)
	}
	// Deleting the agent revokes its certificate too.
	if err := store.DeleteAgent(ctx, pki.RoleProxy, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Heartbeat(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := peers.Check(ctx, connState(t, current)); !errors.Is(err, ErrNotVouched) {
		t.Fatalf("Check after the agent was deleted: %v, want ErrNotVouched", err)
	}
}

// TestPeerSetRefreshRateLimited: unknown certificates make the set ask the
// server at most once per MinRefresh (fake clock).
func TestPeerSetRefreshRateLimited(t *testing.T) {
	ts, ca, store := testServer(t)
	ctx := context.Background()
	stranger := joinAs(t, ts, ca, store, pki.RoleProxy, "p9")
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	refreshes := 0
	peers := NewPeerSet(PeerSetOptions{MinRefresh: time.Second, Clock: clk,
		Refresh: func(context.Context) error { refreshes++; return nil }})
	for range 50 {
		if _, err := peers.Check(ctx, connState(t, stranger)); !errors.Is(err, ErrNotVouched) {
			t.Fatalf("Check: %v, want ErrNotVouched", err)
		}
	}
	if refreshes != 1 {
		t.Fatalf("%d refreshes for 50 misses within MinRefresh, want 1", refreshes)
	}
	clk.Advance(time.Second)
	_, _ = peers.Check(ctx, connState(t, stranger))
	if refreshes != 2 {
		t.Fatalf("%d refreshes after MinRefresh passed, want 2", refreshes)
	}
	// A certificate without a holdfast identity never gets that far.
	if _, err := peers.Check(ctx, &tls.ConnectionState{}); !errors.Is(err, pki.ErrNoPeerCertificate) {
		t.Fatalf("Check without a certificate: %v", err)
	}
}
