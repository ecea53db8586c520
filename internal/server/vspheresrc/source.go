package vspheresrc

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
)

// Kind is the source kind of a vSphere source in the configuration
// database.
const Kind = "vsphere"

// ErrInvalid is wrapped by the errors of a faulty definition.
var ErrInvalid = errors.New("invalid vSphere source")

// Definition is a vSphere source's stored definition (see the package
// documentation).
type Definition struct {
	Address      string `json:"address"`
	PasswordFile string `json:"password_file"`
	Thumbprint   string `json:"tls_thumbprint,omitempty"`
	CAPEM        string `json:"ca_pem,omitempty"`
	Insecure     bool   `json:"insecure,omitempty"`
}

// Parse reads a stored or requested definition strictly (unknown keys,
// an inline password among them, are refused) and checks it.
func Parse(raw []byte) (Definition, error) {
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Definition{}, fmt.Errorf("%w: definition: %v (want address, password_file, and tls_thumbprint, ca_pem or insecure)", ErrInvalid, err)
	}
	return d, d.Check()
}

// Check validates the definition: a vsphere://USER@HOST[:PORT] address
// without an inventory path, an absolute password file path, and at most
// one way to trust the endpoint.
func (d Definition) Check() error {
	loc, err := vsphere.ParseURL(d.Address)
	if err != nil {
		return fmt.Errorf("%w: address: %w", ErrInvalid, err)
	}
	if loc.Path != "" {
		return fmt.Errorf("%w: address %s: want vsphere://USER@HOST[:PORT] (jobs select the VMs)", ErrInvalid, loc)
	}
	if !filepath.IsAbs(d.PasswordFile) {
		return fmt.Errorf("%w: password_file %q: want an absolute path on the server host", ErrInvalid, d.PasswordFile)
	}
	n := 0
	for _, set := range []bool{d.Thumbprint != "", d.CAPEM != "", d.Insecure} {
		if set {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%w: give one of tls_thumbprint, ca_pem and insecure", ErrInvalid)
	}
	if d.Thumbprint != "" {
		if _, err := vsphere.ParseThumbprint(d.Thumbprint); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if d.CAPEM != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(d.CAPEM)) {
		return fmt.Errorf("%w: ca_pem: no PEM certificates", ErrInvalid)
	}
	return nil
}

// Locator is the source's user and endpoint.
func (d Definition) Locator() vsphere.Locator {
	loc, _ := vsphere.ParseURL(d.Address)
	return loc
}

// CheckPasswordFile looks at the password file on this (the server's)
// host without reading it: it must be a regular file; one that group or
// others may access gives a warning.
func (d Definition) CheckPasswordFile() (warnings []string, err error) {
	fi, err := os.Stat(d.PasswordFile)
	if err != nil {
		return nil, d.fileError(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("vSphere password file %s on the server: not a regular file", d.PasswordFile)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		warnings = append(warnings, fmt.Sprintf("vSphere password file %s is readable beyond its owner (mode %04o): make it 0600",
			d.PasswordFile, perm))
	}
	return warnings, nil
}

// Login reads the password file and returns the login and trust a task
// carries. The password's value never appears in an error.
func (d Definition) Login() (*taskproto.VSphere, error) {
	b, err := os.ReadFile(d.PasswordFile)
	if err != nil {
		return nil, d.fileError(err)
	}
	pw := string(bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r")))
	if pw == "" {
		return nil, fmt.Errorf("vSphere password file %s on the server is empty", d.PasswordFile)
	}
	return &taskproto.VSphere{Password: pw, Thumbprint: d.Thumbprint, CAPEM: d.CAPEM, Insecure: d.Insecure}, nil
}

// fileError words a failure to stat or read the password file.
func (d Definition) fileError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("vSphere password file %s on the server: %w", d.PasswordFile, err)
}
