package smtptest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// EnvRequire makes a missing mailpit fail the test instead of skipping it.
const EnvRequire = "HOLDFAST_REQUIRE_SMTP"

// Options configure Start.
type Options struct {
	User, Password string // SMTP login (required by the server)
	Implicit       bool   // implicit TLS instead of required STARTTLS
	Port           int    // SMTP port; 0: a free one
	Cert           *Cert  // the server's certificate; nil: a new one
}

// Cert is a self-signed server certificate for 127.0.0.1 and localhost.
type Cert struct{ CertPEM, KeyPEM []byte }

// NewCert makes a Cert (so that a server started later, or again, keeps
// the certificate clients were given).
func NewCert(t testing.TB) *Cert {
	c, k := selfSigned(t)
	return &Cert{CertPEM: c, KeyPEM: k}
}

// Server is a running mailpit.
type Server struct {
	Host  string // 127.0.0.1
	Port  int    // SMTP
	CAPEM string // the certificate of the SMTP server (self-signed)
	api   string
	cmd   *exec.Cmd
	done  chan struct{}
}

// Binary finds mailpit: $PATH, then $GOBIN / $GOPATH/bin / ~/go/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p, nil
	}
	var dirs []string
	for _, env := range []string{"GOBIN", "GOPATH"} {
		if d := os.Getenv(env); d != "" {
			dirs = append(dirs, d, filepath.Join(d, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "mailpit")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("mailpit not found (go install github.com/axllent/mailpit@v1.33.1)")
}

// Require skips the test (or fails it, see EnvRequire) without mailpit.
func Require(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv(EnvRequire) != "" {
			t.Fatalf("%s is set: %v", EnvRequire, err)
		}
		t.Skip(err)
	}
	return bin
}

// FreePort returns a loopback port free at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs mailpit until the test ends (or Stop), and waits until its
// API answers.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Require(t)
	dir := t.TempDir()
	if o.Cert == nil {
		o.Cert = NewCert(t)
	}
	certPEM, keyPEM := o.Cert.CertPEM, o.Cert.KeyPEM
	cert, key, auth := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "auth")
	for p, b := range map[string][]byte{cert: certPEM, key: keyPEM, auth: []byte(o.User + ":" + o.Password + "\n")} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if o.Port == 0 {
		o.Port = FreePort(t)
	}
	apiPort := FreePort(t)
	args := []string{"--smtp", "127.0.0.1:" + strconv.Itoa(o.Port), "--listen", "127.0.0.1:" + strconv.Itoa(apiPort),
		"--database", filepath.Join(dir, "mailpit.db"), "--smtp-auth-file", auth,
		"--smtp-tls-cert", cert, "--smtp-tls-key", key, "--smtp-disable-rdns", "--disable-version-check", "--quiet"}
	if o.Implicit {
		args = append(args, "--smtp-require-tls")
	} else {
		args = append(args, "--smtp-require-starttls")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{Host: "127.0.0.1", Port: o.Port, CAPEM: string(certPEM), api: "http://127.0.0.1:" + strconv.Itoa(apiPort),
		cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)
	if err := s.waitReady(); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitReady polls the API and the SMTP port until both answer, or mailpit
// exits, or 30 s pass.
func (s *Server) waitReady() error {
	deadline := clock.Deadline(30 * time.Second)
	for {
		resp, err := http.Get(s.api + "/api/v1/info")
		if err == nil {
			resp.Body.Close()
			if c, err := net.Dial("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port))); err == nil {
				c.Close()
				return nil
			}
		}
		select {
		case <-s.done:
			return errors.New("mailpit exited")
		case <-time.After(50 * time.Millisecond):
		}
		if clock.Real().Now().After(deadline) {
			return errors.New("mailpit did not answer within 30 s")
		}
	}
}

// Stop ends mailpit (idempotent).
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Message is a received message as mailpit's API gives it.
type Message struct {
	ID      string
	Subject string
	From    struct{ Address string }
	To      []struct{ Address string }
	Text    string
}

// Messages returns the received messages, newest first, with their text.
func (s *Server) Messages(ctx context.Context) ([]Message, error) {
	var list struct{ Messages []Message }
	if err := s.get(ctx, "/api/v1/messages", &list); err != nil {
		return nil, err
	}
	for i := range list.Messages {
		if err := s.get(ctx, "/api/v1/message/"+list.Messages[i].ID, &list.Messages[i]); err != nil {
			return nil, err
		}
	}
	return list.Messages, nil
}

func (s *Server) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.api+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// selfSigned makes a certificate for 127.0.0.1 and localhost.
func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Real().Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtptest"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
