package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/spf13/pflag"
)

// envVSpherePassword holds the vCenter/ESXi password when no file is given.
const envVSpherePassword = "HOLDFAST_VSPHERE_PASSWORD"

// vsphereFlags are the flags every command that talks to vSphere takes:
// where its password comes from and how its certificate is trusted.
type vsphereFlags struct {
	passwordFile string
	thumbprint   string
	caFile       string
	insecure     bool
}

func (f *vsphereFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.passwordFile, "vsphere-password-file", "", "file holding the vCenter/ESXi password (default: $"+envVSpherePassword+")")
	fs.StringVar(&f.thumbprint, "tls-thumbprint", "", "trust the vSphere server whose certificate has this SHA-256 thumbprint")
	fs.StringVar(&f.caFile, "vsphere-ca", "", "CA certificate (PEM) to verify the vSphere server (default: the system's)")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the vSphere server's certificate (only on a network you trust)")
}

// connectOptions reads the password and the trust settings. The password
// comes from --vsphere-password-file, else $HOLDFAST_VSPHERE_PASSWORD; it
// never appears in a message.
func (f vsphereFlags) connectOptions(a *app) (vsphere.ConnectOptions, error) {
	var o vsphere.ConnectOptions
	n := 0
	for _, set := range []bool{f.thumbprint != "", f.caFile != "", f.insecure} {
		if set {
			n++
		}
	}
	if n > 1 {
		return o, usageError{errors.New("give one of --tls-thumbprint, --vsphere-ca and --insecure")}
	}
	switch {
	case f.passwordFile != "":
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return o, fmt.Errorf("--vsphere-password-file: %w", err)
		}
		o.Password = string(bytes.TrimRight(b, "\r\n"))
	default:
		o.Password = a.getenv(envVSpherePassword)
	}
	if o.Password == "" {
		return o, usageError{fmt.Errorf("no vSphere password: use --vsphere-password-file or set %s", envVSpherePassword)}
	}
	if f.thumbprint != "" {
		if _, err := vsphere.ParseThumbprint(f.thumbprint); err != nil {
			return o, usageError{err}
		}
	}
	o.Thumbprint, o.Insecure = f.thumbprint, f.insecure
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return o, fmt.Errorf("--vsphere-ca: %w", err)
		}
		o.RootCAs = x509.NewCertPool()
		if !o.RootCAs.AppendCertsFromPEM(pem) {
			return o, usageError{fmt.Errorf("--vsphere-ca %s: no PEM certificates", f.caFile)}
		}
	}
	return o, nil
}
