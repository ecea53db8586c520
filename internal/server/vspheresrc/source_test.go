package vspheresrc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vc"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestParse(t *testing.T) {
	ca, _ := json.Marshal(testCA(t))
	thumb := strings.Repeat("ab", 32)
	tests := []struct {
		def string
		err string // "" valid
	}{
		{`{"address":"vsphere://u@vc","password_file":"/etc/pw"}`, ""},
		{`{"address":"vsphere://u@vc:8443","password_file":"/etc/pw","tls_thumbprint":"` + thumb + `"}`, ""},
		{`{"address":"vsphere://u@vc","password_file":"/etc/pw","ca_pem":` + string(ca) + `}`, ""},
		{`{"address":"vsphere://u@vc","password_file":"/etc/pw","insecure":true}`, ""},
		{`{"address":"vsphere://u@vc","password_file":"/etc/pw","password":"s3cret"}`, "unknown field"},
		{`{"address":"vsphere://u:s3cret@vc","password_file":"/etc/pw"}`, "password does not go in the URL"},
		{`{"address":"vsphere://vc","password_file":"/etc/pw"}`, "address"},
		{`{"address":"nbd://vc","password_file":"/etc/pw"}`, "address"},
		{`{"address":"vsphere://u@vc/DC0/vm/a","password_file":"/etc/pw"}`, "jobs select the VMs"},
		{`{"address":"vsphere://u@vc"}`, "password_file"},
		{`{"address":"vsphere://u@vc","password_file":"pw"}`, "absolute path"},
		{`{"address":"vsphere://u@vc","password_file":"/p","insecure":true,"tls_thumbprint":"` + thumb + `"}`, "one of"},
		{`{"address":"vsphere://u@vc","password_file":"/p","tls_thumbprint":"abc"}`, "SHA-256"},
		{`{"address":"vsphere://u@vc","password_file":"/p","ca_pem":"junk"}`, "no PEM"},
		{`[]`, "definition"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.def))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.def, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid)):
			t.Errorf("%s: %v, want an ErrInvalid with %q", tc.def, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", tc.def, err)
		}
	}
}

func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		file     string
		want     string // the password ("" Login fails)
		warn     bool
		checkErr bool
	}{
		{write("ok", "s3cret\n", 0o600), "s3cret", false, false},
		{write("crlf", "s3cret\r\n", 0o400), "s3cret", false, false},
		{write("spaces", " s3 cret \n", 0o600), " s3 cret ", false, false},
		{write("open", "s3cret", 0o644), "s3cret", true, false},
		{write("empty", "\n", 0o600), "", false, false},
		{filepath.Join(dir, "missing"), "", false, true},
		{dir, "", false, true},
	}
	for _, tc := range tests {
		d := Definition{Address: "vsphere://u@vc", PasswordFile: tc.file, Thumbprint: "AA"}
		warns, err := d.CheckPasswordFile()
		if (err != nil) != tc.checkErr || (len(warns) > 0) != tc.warn {
			t.Errorf("%s: check %v %v", tc.file, warns, err)
		}
		for _, w := range warns {
			if !strings.Contains(w, "0644") || strings.Contains(w, "s3cret") {
				t.Errorf("%s: warning %q", tc.file, w)
			}
		}
		login, err := d.Login()
		if tc.want == "" {
			if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), tc.file) {
				t.Errorf("%s: login %v, want an error naming the file", tc.file, err)
			}
			continue
		}
		if err != nil || login.Password != tc.want || login.Thumbprint != "AA" {
			t.Errorf("%s: login %+v %v", tc.file, login, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"address":"vsphere://u@vc","password_file":"/etc/pw"}`))
	f.Add([]byte(`{"address":"vsphere://u@vc:1/x","password_file":"/p","ca_pem":"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"}`))
	f.Add([]byte(`{"address":"vsphere://%zz@vc","password_file":"/p","tls_thumbprint":"zz"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err == nil {
			if d.Locator().Host == "" {
				t.Fatalf("valid definition without a host: %s", b)
			}
			return
		}
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
	})
}
