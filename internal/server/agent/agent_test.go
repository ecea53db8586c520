package agent

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/api"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// testServer serves the API over TLS with a fresh CA and database.
func testServer(t *testing.T) (*httptest.Server, *pki.CA, *configdb.Store) {
	t.Helper()
	ctx := context.Background()
	store, err := configdb.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "db"),
		configdb.WithMasterKey(bytes.Repeat([]byte{1}, configdb.MasterKeySize)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ca, err := pki.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(api.New(store, api.Config{CA: ca, Logger: slog.New(slog.DiscardHandler),
		ServerFingerprint: pki.Fingerprint(cert.Leaf)}))
	ts.TLS = ca.ServerTLSConfig(cert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts, ca, store
}

func TestJoinStateHeartbeat(t *testing.T) {
	ts, ca, store := testServer(t)
	ctx := context.Background()
	tok, err := store.CreateJoinToken(ctx, configdb.AgentProxy, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := Join(ctx, ts.URL, ca.CertPEM(), pki.RoleProxy, "proxy1", tok, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(ctx, ts.URL, ca.CertPEM(), pki.RoleProxy, "proxy2", tok, "", 2); !errors.Is(err, ErrRefused) {
		t.Fatalf("second use of the token: %v, want ErrRefused", err)
	}
	dir := filepath.Join(t.TempDir(), "state")
	if _, err := LoadState(dir, pki.RoleProxy, "proxy1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadState without state: %v", err)
	}
	if err := SaveState(dir, creds); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	loaded, err := LoadState(dir, pki.RoleProxy, "proxy1")
	if err != nil || !bytes.Equal(loaded.CertPEM, creds.CertPEM) {
		t.Fatalf("LoadState: %v", err)
	}
	if _, err := LoadState(dir, pki.RoleRepository, "proxy1"); err == nil || !strings.Contains(err.Error(), "not repository") {
		t.Fatalf("LoadState for another identity: %v", err)
	}
	c, err := NewClient(ts.URL, loaded)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Heartbeat(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	a, err := store.GetAgent(ctx, configdb.AgentProxy, "proxy1")
	if err != nil || a.LastHeartbeat.IsZero() {
		t.Fatalf("agent %+v %v", a, err)
	}
}

func TestJoinRejectsOtherCA(t *testing.T) {
	ts, _, store := testServer(t)
	other, err := pki.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := store.CreateJoinToken(context.Background(), configdb.AgentProxy, time.Hour)
	if _, err := Join(context.Background(), ts.URL, other.CertPEM(), pki.RoleProxy, "p", tok, "", 1); err == nil {
		t.Fatal("joined a server whose certificate the given CA did not sign")
	}
}
