package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/nbd"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// TestMountTLS: the exports of a mount answer only a client holding the
// session's client certificate; one from another session, none, or plain
// NBD is refused.
func TestMountTLS(t *testing.T) {
	clientCA, err := pki.NewSessionCA("test session", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := clientCA.IssueClient("requester")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := pki.NewSessionCA("another session", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := otherCA.IssueClient("requester")
	if err != nil {
		t.Fatal(err)
	}
	cfg, caPEM, err := mountTLS(clientCA.CertPEM(), "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("holdfast"), 8192)
	srv, err := nbd.NewServer(nbd.ServerOptions{TLSConfig: cfg, RequireTLS: true},
		nbd.Export{Name: "disk-0", Size: int64(len(data)), ReaderAt: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("the exports' CA certificate does not parse")
	}
	pair := func(i *pki.Issued) []tls.Certificate {
		c, err := i.TLSCertificate()
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	for _, c := range []struct {
		name   string
		scheme string
		certs  []tls.Certificate
		ok     bool
	}{
		{"session certificate", "nbds", pair(issued), true},
		{"no client certificate", "nbds", nil, false},
		{"another session's certificate", "nbds", pair(other), false},
		{"plain NBD", "nbd", pair(issued), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer dcancel()
			cl, err := nbd.Dial(dctx, c.scheme+"://"+ln.Addr().String()+"/disk-0",
				nbd.ClientOptions{TLSConfig: &tls.Config{RootCAs: roots, Certificates: c.certs}})
			if !c.ok {
				if err == nil {
					cl.Close()
					t.Fatal("connected")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			got := make([]byte, len(data))
			if _, err := cl.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read: %v", err)
			}
		})
	}
}

func TestListenHosts(t *testing.T) {
	if got := listenHosts("192.0.2.5:10809"); !slices.Equal(got, []string{"192.0.2.5"}) {
		t.Errorf("specific address: %v", got)
	}
	if got := listenHosts("[2001:db8::1]:10809"); !slices.Equal(got, []string{"2001:db8::1"}) {
		t.Errorf("IPv6 address: %v", got)
	}
	for _, l := range []string{"0.0.0.0:10809", ":10809", "[::]:10809"} {
		got := listenHosts(l)
		if !slices.Contains(got, "localhost") || !slices.Contains(got, "127.0.0.1") || slices.ContainsFunc(got, func(h string) bool {
			return strings.HasPrefix(h, "0.0.0.0") || h == "::"
		}) {
			t.Errorf("wildcard %s: %v", l, got)
		}
	}
}
