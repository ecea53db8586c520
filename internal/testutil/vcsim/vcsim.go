package vcsim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
)

// The credentials the simulator accepts.
const (
	User     = "administrator@vsphere.local"
	Password = "hf-Sim-pa55word"
)

// Sim is a running simulator.
type Sim struct {
	Model  *simulator.Model
	Server *simulator.Server
	// Host is the simulator's 127.0.0.1:PORT.
	Host string
	// Thumbprint is the SHA-256 thumbprint of its certificate; RootCAs
	// trust it.
	Thumbprint string
	RootCAs    *x509.CertPool

	cbtOnce        sync.Once
	cbt            *CBT
	requireSession atomic.Bool
}

// RequireSession makes datastore file reads (GET /folder/…) answer 401
// without a session cookie, as an ESXi host does (off by default).
func (s *Sim) RequireSession(on bool) { s.requireSession.Store(on) }

// Start starts a VPX model (one datacenter DC0, a cluster and a
// standalone host, VMs DC0_H0_VM0 … and DC0_C0_RP0_VM0 …, datastore
// LocalDS_0) with configure applied to the model before it is created;
// everything stops when the test ends.
func Start(t testing.TB, configure func(*simulator.Model)) *Sim {
	t.Helper()
	m := simulator.VPX()
	if configure != nil {
		configure(m)
	}
	if err := m.Create(); err != nil {
		t.Fatalf("vcsim: %v", err)
	}
	m.Service.TLS = new(tls.Config)
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(User, Password)}
	sim := &Sim{Model: m}
	if m.Service.ServeMux == nil {
		m.Service.ServeMux = http.NewServeMux()
	}
	// Reads of datastore files, as the simulator serves them, but like an
	// ESXi host only for a logged-in session once RequireSession is on.
	m.Service.ServeMux.HandleFunc("GET /folder/", func(w http.ResponseWriter, r *http.Request) {
		if sim.requireSession.Load() {
			if c, err := r.Cookie(soap.SessionCookieName); err != nil || c.Value == "" {
				http.Error(w, "no session", http.StatusUnauthorized)
				return
			}
		}
		m.Service.ServeDatastore(w, r)
	})
	s := m.Service.NewServer()
	t.Cleanup(func() {
		s.Close()
		m.Remove()
	})
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	sim.Server, sim.Host, sim.Thumbprint, sim.RootCAs = s, s.URL.Host, vsphere.Thumbprint(s.Certificate()), pool
	for _, e := range m.Map().All("VirtualMachine") {
		for _, d := range sim.Disks(t, e.Entity().Name) {
			fixDescriptor(t, d.Flat)
		}
	}
	return sim
}

// URL returns vsphere://USER@HOST followed by path ("/DC0/vm/DC0_H0_VM0").
func (s *Sim) URL(path string) string {
	return "vsphere://" + url.PathEscape(User) + "@" + s.Host + path
}

// Options are connect options that trust the simulator.
func (s *Sim) Options() vsphere.ConnectOptions {
	return vsphere.ConnectOptions{Password: Password, RootCAs: s.RootCAs}
}

// Connect logs in to the simulator.
func (s *Sim) Connect(t testing.TB) *vsphere.Client {
	t.Helper()
	loc, err := vsphere.ParseURL(s.URL(""))
	if err != nil {
		t.Fatal(err)
	}
	c, err := vsphere.Connect(context.Background(), loc, s.Options())
	if err != nil {
		t.Fatalf("connect to vcsim: %v", err)
	}
	t.Cleanup(func() { c.Logout(context.Background()) })
	return c
}
