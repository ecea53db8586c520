package vsphere

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/tlsconf"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// ErrLogin is matched by the error of a refused user name or password.
var ErrLogin = errors.New("vSphere login refused")

// ErrThumbprint is matched by the error of a server certificate that does
// not match the pinned thumbprint.
var ErrThumbprint = errors.New("vSphere server certificate does not match the pinned thumbprint")

// ConnectOptions say how to reach and trust a vSphere endpoint.
type ConnectOptions struct {
	// Password of the locator's user. Never logged or printed.
	Password string
	// Thumbprint pins the server certificate by its SHA-256 thumbprint
	// (hex, colons optional, any case); chain and name are then not
	// checked.
	Thumbprint string
	// RootCAs verify the server (nil: the system's roots).
	RootCAs *x509.CertPool
	// Insecure skips every certificate check. Only when asked for.
	Insecure bool
}

// Client is a logged-in vSphere API session.
type Client struct {
	*vim25.Client
	Locator Locator
}

// Connect logs in to the locator's endpoint. Its errors never hold the
// password; a wrong password matches ErrLogin and a certificate that does
// not match the pin ErrThumbprint.
func Connect(ctx context.Context, loc Locator, o ConnectOptions) (*Client, error) {
	u := &url.URL{Scheme: "https", Host: loc.Endpoint(), Path: "/sdk"}
	sc := soap.NewClient(u, o.Insecure)
	tc, err := clientTLS(o)
	if err != nil {
		return nil, err
	}
	sc.DefaultTransport().TLSClientConfig = tc
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, connectError(loc, err)
	}
	sm := session.NewManager(vc)
	if err := sm.Login(ctx, url.UserPassword(loc.User, o.Password)); err != nil {
		if fault.Is(err, &types.InvalidLogin{}) {
			return nil, fmt.Errorf("%w: %s@%s: incorrect user name or password", ErrLogin, loc.User, loc.Host)
		}
		return nil, connectError(loc, err)
	}
	return &Client{Client: vc, Locator: loc}, nil
}

// Logout ends the session; errors are of no use to the caller.
func (c *Client) Logout(ctx context.Context) {
	_ = session.NewManager(c.Client).Logout(ctx)
}

// connectError words a failure to reach the endpoint.
func connectError(loc Locator, err error) error {
	if errors.Is(err, ErrThumbprint) {
		return err
	}
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var cerr *tls.CertificateVerificationError
	if errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return fmt.Errorf("connect to vSphere %s: the server certificate is not trusted (%v); pin it with --tls-thumbprint SHA256 or give its CA", loc.Host, err)
	}
	return fmt.Errorf("connect to vSphere %s: %w", loc.Host, err)
}

// clientTLS builds the TLS configuration: a pinned thumbprint, given
// roots or the system's, or none when insecure.
func clientTLS(o ConnectOptions) (*tls.Config, error) {
	tc := tlsconf.Base()
	switch {
	case o.Thumbprint != "":
		want, err := ParseThumbprint(o.Thumbprint)
		if err != nil {
			return nil, err
		}
		tc.InsecureSkipVerify = true // the pin below is the check
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: no certificate", ErrThumbprint)
			}
			got := Thumbprint(cs.PeerCertificates[0])
			if got != want {
				return fmt.Errorf("%w: the server's is %s, the pinned %s", ErrThumbprint, got, want)
			}
			return nil
		}
	case o.Insecure:
		tc.InsecureSkipVerify = true
	default:
		tc.RootCAs = o.RootCAs
	}
	return tc, nil
}

// Thumbprint is a certificate's SHA-256 thumbprint as vSphere shows it:
// upper-case hex pairs joined by colons.
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return formatThumbprint(sum[:])
}

// ParseThumbprint normalises a SHA-256 thumbprint (hex, colons or not,
// any case).
func ParseThumbprint(s string) (string, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("--tls-thumbprint: want a SHA-256 thumbprint (64 hex digits, colons allowed)")
	}
	return formatThumbprint(b), nil
}

func formatThumbprint(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}
