package pki

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedClock(t time.Time) clock.Clock { return clock.NewFake(t) }

func mustInit(t *testing.T, dir string, opts ...Option) *CA {
	t.Helper()
	ca, err := Init(dir, opts...)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return ca
}

func TestInitCreatesOnceThenLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca1 := mustInit(t, dir, WithClock(fixedClock(t0)))
	ca2 := mustInit(t, dir)
	ca3, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if ca1.Fingerprint() != ca2.Fingerprint() || ca1.Fingerprint() != ca3.Fingerprint() {
		t.Fatal("second Init or Load produced a different CA")
	}
	c := ca1.Certificate()
	if !c.IsCA || c.NotAfter.Sub(t0) != CAValidity {
		t.Fatalf("CA: IsCA=%v NotAfter=%v", c.IsCA, c.NotAfter)
	}
	for name, want := range map[string]os.FileMode{CAKeyFile: 0o600, CACertFile: 0o644, ".": 0o700} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %#o, want %#o", name, got, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	other := mustInit(t, t.TempDir())
	otherKey, err := os.ReadFile(filepath.Join(other.dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		breakf func(dir string) error
		want   string
	}{
		{"garbage ca.pem", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, CACertFile), []byte("not a certificate\n"), 0o644)
		}, `ca.pem: no PEM "CERTIFICATE" block found`},
		{"corrupt DER", func(dir string) error {
			bad := "-----BEGIN CERTIFICATE-----\nMIIBkjCCATegAwIBAgIRAK==\n-----END CERTIFICATE-----\n"
			return os.WriteFile(filepath.Join(dir, CACertFile), []byte(bad), 0o644)
		}, "ca.pem: corrupt certificate"},
		{"truncated ca.pem", func(dir string) error {
			p := filepath.Join(dir, CACertFile)
			b, _ := os.ReadFile(p)
			return os.WriteFile(p, b[:len(b)/2], 0o644)
		}, "ca.pem: no PEM"},
		{"foreign key", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, CAKeyFile), otherKey, 0o600)
		}, "ca-key.pem does not belong to ca.pem"},
		{"readable key", func(dir string) error {
			return os.Chmod(filepath.Join(dir, CAKeyFile), 0o644)
		}, "must be readable by its owner only"},
		{"corrupt key", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("x"), 0o600)
		}, `ca-key.pem: no PEM "PRIVATE KEY" block`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mustInit(t, dir)
			if err := tc.breakf(dir); err != nil {
				t.Fatal(err)
			}
			for fn, f := range map[string]func(string, ...Option) (*CA, error){"Load": Load, "Init": Init} {
				_, err := f(dir)
				if err == nil || !errors.Is(err, ErrInvalidCA) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: got %v, want ErrInvalidCA containing %q", fn, err, tc.want)
				}
			}
		})
	}
}

func TestLoadMissingAndIncomplete(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of empty dir: %v, want fs.ErrNotExist", err)
	}
	mustInit(t, dir)
	if err := os.Remove(filepath.Join(dir, CACertFile)); err != nil {
		t.Fatal(err)
	}
	_, err := Init(dir)
	if !errors.Is(err, ErrInvalidCA) || !strings.Contains(err.Error(), "incomplete CA") {
		t.Fatalf("Init with key but no certificate: %v", err)
	}
}

func TestLeafValidityOption(t *testing.T) {
	if _, err := Init(t.TempDir(), WithLeafValidity(-time.Hour)); err == nil {
		t.Fatal("negative leaf validity accepted")
	}
	ca := mustInit(t, t.TempDir(), WithClock(fixedClock(t0)), WithLeafValidity(48*time.Hour))
	iss, err := ca.IssueAgent(RoleProxy, "p1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !iss.NotAfter.Equal(t0.Add(48 * time.Hour)) {
		t.Fatalf("NotAfter %v", iss.NotAfter)
	}
}
