package repoagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/server/agent"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// testPKI is a CA with certificates for a server, two proxies and a
// repository agent.
type testPKI struct {
	ca                     *pki.CA
	server                 tls.Certificate
	proxy, other, repoCert *pki.Issued
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := pki.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{ca: ca}
	if p.server, err = ca.IssueServer([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		to         **pki.Issued
		role, name string
	}{{&p.proxy, pki.RoleProxy, "p1"}, {&p.other, pki.RoleProxy, "p2"}, {&p.repoCert, pki.RoleRepository, "r1"}} {
		if *c.to, err = ca.IssueAgent(c.role, c.name, nil, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (p *testPKI) serverFP() string { return pki.Fingerprint(p.server.Leaf) }

// request is a request over a connection whose client presented certPEM
// (or the server's certificate).
func request(t *testing.T, leaf *x509.Certificate) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, "https://agent/", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}
	return r
}

func leafOf(t *testing.T, i *pki.Issued) *x509.Certificate {
	t.Helper()
	c, err := pki.ParseCertificatePEM(i.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAccess(t *testing.T) {
	p := newTestPKI(t)
	peers := agent.NewPeerSet(agent.PeerSetOptions{})
	peers.Update([]agent.Peer{{Role: pki.RoleServer, Fingerprint: p.serverFP()},
		{Role: pki.RoleProxy, Name: "p1", Fingerprint: p.proxy.Fingerprint},
		{Role: pki.RoleRepository, Name: "r1", Fingerprint: p.repoCert.Fingerprint}})
	for _, c := range []struct {
		name          string
		leaf          *x509.Certificate
		proxySessions int
		want          mover.Access
		wantErr       error
		forgetErr     error
	}{
		{name: "server", leaf: p.server.Leaf, want: mover.Access{Sessions: math.MaxInt, ListPoints: true, RecordScans: true}},
		{name: "proxy", leaf: leafOf(t, p.proxy), want: mover.Access{Sessions: DefaultProxySessions, RecordScans: true}, forgetErr: pki.ErrWrongRole},
		{name: "proxy, own bound", leaf: leafOf(t, p.proxy), proxySessions: 3, want: mover.Access{Sessions: 3, RecordScans: true}, forgetErr: pki.ErrWrongRole},
		{name: "repository agent", leaf: leafOf(t, p.repoCert), wantErr: pki.ErrWrongRole, forgetErr: pki.ErrWrongRole},
		{name: "proxy not vouched for", leaf: leafOf(t, p.other), wantErr: agent.ErrNotVouched, forgetErr: agent.ErrNotVouched},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := &Access{Peers: peers, ProxySessions: c.proxySessions}
			got, err := a.Authorize(request(t, c.leaf), "r1")
			if !errors.Is(err, c.wantErr) || got != c.want {
				t.Errorf("Authorize: %+v %v, want %+v %v", got, err, c.want, c.wantErr)
			}
			if err := a.AuthorizeForget(request(t, c.leaf)); !errors.Is(err, c.forgetErr) {
				t.Errorf("AuthorizeForget: %v, want %v", err, c.forgetErr)
			}
			if err := a.AuthorizeMaintain(request(t, c.leaf)); !errors.Is(err, c.forgetErr) {
				t.Errorf("AuthorizeMaintain: %v, want %v", err, c.forgetErr)
			}
		})
	}
}

// fakeServer is the backup server: every heartbeat is answered with the
// current peer list.
type fakeServer struct {
	mu      sync.Mutex
	peers   []agent.Peer
	onReply func(apitypes.HeartbeatReply)
}

func (f *fakeServer) setPeers(p ...agent.Peer) {
	f.mu.Lock()
	f.peers = p
	f.mu.Unlock()
}

func (f *fakeServer) Heartbeat(context.Context, string, int) error {
	f.mu.Lock()
	rep, fn := apitypes.HeartbeatReply{Peers: f.peers}, f.onReply
	f.mu.Unlock()
	if fn != nil {
		fn(rep)
	}
	return nil
}

func (f *fakeServer) HeartbeatLoop(ctx context.Context, _ time.Duration, address string, slots int, _ func(error)) {
	_ = f.Heartbeat(ctx, address, slots)
	<-ctx.Done()
}

func (f *fakeServer) OnReply(fn func(apitypes.HeartbeatReply)) {
	f.mu.Lock()
	f.onReply = fn
	f.mu.Unlock()
}

// TestServe: the agent serves its repository to a proxy the server vouches
// for, refuses it once the server stops vouching, and stops with ctx.
func TestServe(t *testing.T) {
	p := newTestPKI(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := repo.Init(ctx, storage.NewLocal(t.TempDir()), nil, repo.InitOptions{ChunkSize: repo.MinChunkSize})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fakeServer{}
	proxyPeer := agent.Peer{Role: pki.RoleProxy, Name: "p1", Fingerprint: p.proxy.Fingerprint}
	srv.setPeers(proxyPeer)
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, Options{Name: "r1", Repo: r, Server: srv, Slots: 1, Address: "127.0.0.1:1",
			Creds: &agent.Credentials{CertPEM: p.repoCert.CertPEM, KeyPEM: p.repoCert.KeyPEM, CAPEM: p.ca.CertPEM()},
			Ready: func(a net.Addr) { ready <- a }})
	}()
	addr := (<-ready).String()
	dial := func() error {
		cert, err := p.proxy.TLSCertificate()
		if err != nil {
			t.Fatal(err)
		}
		hc := mover.NewHTTPClient(p.ca.ClientTLSConfig(&cert, pki.RoleRepository, "r1"))
		c, err := mover.Dial(ctx, mover.ClientOptions{URL: "https://" + addr, Repo: "r1", HTTP: hc})
		if err == nil {
			c.Close()
		}
		hc.CloseIdleConnections()
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("a vouched-for proxy: %v", err)
	}
	srv.setPeers() // the proxy was deleted on the server: the next heartbeat reply says so
	_ = srv.Heartbeat(ctx, "", 0)
	if err := dial(); err == nil {
		t.Fatal("a proxy the server no longer vouches for got in")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestHarden: the agent's hardened view refuses to forget a young point,
// and its capability report says what it enforces.
func TestHarden(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, storage.NewLocal(t.TempDir()), nil, repo.InitOptions{ChunkSize: repo.MinChunkSize})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	hr, h := Harden(r, 7, nil, slog.New(slog.DiscardHandler))
	if h.Days != 7 || h.Attributes == (h.AttrError != "") {
		t.Fatalf("hardening %+v", h)
	}
	m := &repo.Manifest{ID: "00112233aabbccdd", VM: "vm1", Time: time.Now()}
	if err := hr.CommitPoint(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := hr.RemovePoint(ctx, m); !errors.Is(err, storage.ErrImmutable) {
		t.Fatalf("forget of a new point: %v", err)
	}
	if h.Attributes { // root on a file system with attributes: leave none for the clean-up
		_ = r.Backend().(*storage.Local).SetImmutable("points/"+m.ID, false)
	}
	b, err := json.Marshal(StorageReport{Path: t.TempDir(), Hardening: &h})
	if err != nil || !strings.Contains(string(b), `"immutable_days":7`) || !strings.Contains(string(b), `"immutable_files":`) {
		t.Fatalf("capability report %s %v", b, err)
	}
}
