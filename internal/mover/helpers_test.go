package mover

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

const cs = repo.MinChunkSize

const password = testrepo.Password

// testCA issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "holdfast test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) clientCert(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// env is a repository served over mutual TLS.
type env struct {
	repo *repo.Repository
	srv  *Server
	ts   *httptest.Server
	ca   *testCA
	// tls is a client configuration with a valid client certificate.
	tls *tls.Config
}

func newEnv(t *testing.T, r *repo.Repository, o ServerOptions) *env {
	t.Helper()
	if r == nil {
		r = testrepo.New(t, nil)
	}
	srv, err := NewServer(map[string]*repo.Repository{"main": r}, o)
	if err != nil {
		t.Fatal(err)
	}
	ca := newCA(t)
	ts := httptest.NewUnstartedServer(srv)
	ts.EnableHTTP2 = true
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	ts.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool}
	ts.StartTLS()
	t.Cleanup(func() { ts.Close(); srv.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	cfg := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{ca.clientCert(t, "proxy")}}
	return &env{repo: r, srv: srv, ts: ts, ca: ca, tls: cfg}
}

// dial connects a client to url (the server, or a proxy in front of it).
func (e *env) dial(t *testing.T, url string, mod func(*ClientOptions)) *Client {
	t.Helper()
	o := ClientOptions{URL: url, Repo: "main", Password: []byte(password), HTTP: NewHTTPClient(e.tls),
		Retry: RetryPolicy{Initial: 5 * time.Millisecond, Max: 100 * time.Millisecond}}
	if mod != nil {
		mod(&o)
	}
	c, err := Dial(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// request sends a raw request with the valid client certificate and
// returns the status, the error code (if any) and the body.
func (e *env) request(t *testing.T, method, path string, body []byte) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := NewHTTPClient(e.tls).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var er errorResponse
	_ = json.Unmarshal(b, &er)
	return resp.StatusCode, er.Code, b
}

// startSession opens a session with a raw request and returns its id.
func (e *env) startSession(t *testing.T) string {
	t.Helper()
	body, _ := json.Marshal(sessionRequest{RequestID: randomID(), Kind: repo.LockShared})
	st, _, b := e.request(t, http.MethodPost, APIPrefix+"main/sessions", body)
	var sr sessionResponse
	if st != http.StatusCreated || json.Unmarshal(b, &sr) != nil {
		t.Fatalf("start session: %d %s", st, b)
	}
	return sr.Session
}

// backup runs pipeline.BackupPoint of one disk through sink.
func backup(t *testing.T, sink repo.Sink, d source.Disk, workers int) *repo.Manifest {
	t.Helper()
	m, err := pipeline.BackupPoint(context.Background(), sink, pipeline.PointRequest{VM: "vm1",
		Disks: []source.Disk{d}, ChunkSize: cs}, pipeline.Options{Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// restore restores disk 0 of m through sink and returns the bytes.
func restore(t *testing.T, sink repo.Sink, m *repo.Manifest) []byte {
	t.Helper()
	return restoreDisk(t, sink, m, 0)
}

// restoreDisk restores disk i of m through sink and returns the bytes.
func restoreDisk(t *testing.T, sink repo.Sink, m *repo.Manifest, i int) []byte {
	t.Helper()
	ctx := context.Background()
	d, err := restorefs.OpenDisk(ctx, sink, m, i, restorefs.StreamOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out := filepath.Join(t.TempDir(), "out.img")
	ft, err := pipeline.OpenTarget(ctx, out, d.Size(), pipeline.TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.RestoreDisk(ctx, d, ft.RestoreTarget, pipeline.Options{Workers: 3}); err != nil {
		ft.Abort()
		t.Fatal(err)
	}
	if err := ft.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
