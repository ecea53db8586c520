package agent

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// ErrForeignServer means an agent's saved credentials belong to another
// server: a reinstalled server, or one with a new CA, whose certificate the
// saved CA does not verify. Only a new join (a join token) helps.
var ErrForeignServer = errors.New("the saved credentials belong to another server")

// IsForeignServer reports whether err is the server's certificate failing
// verification against the CA the agent saved when it joined.
func IsForeignServer(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.Is(err, ErrForeignServer) || errors.As(err, &ua)
}

// CheckServer checks that the server at serverURL is the one creds were
// issued by: the CA given to the agent now (caPEM, nil: none given) must be
// the saved one, and the server's certificate must verify against the saved
// CA. It returns an error wrapping ErrForeignServer if not, and nil too when
// the server cannot be reached (the agent retries as usual).
func CheckServer(ctx context.Context, serverURL string, caPEM []byte, creds *Credentials) error {
	if len(caPEM) > 0 && !holdsCert(caPEM, creds.CAPEM) {
		return fmt.Errorf("%w: the server's CA given (--ca, HOLDFAST_CA) is not the one saved", ErrForeignServer)
	}
	c, err := NewClient(serverURL, creds)
	if err != nil {
		return err
	}
	defer c.Close()
	err = c.api.Do(ctx, "GET", "/api/v1/health", nil, nil)
	if IsForeignServer(err) {
		return fmt.Errorf("%w: %s answers with a certificate the saved CA did not sign", ErrForeignServer, serverURL)
	}
	return nil
}

// holdsCert reports whether the PEM certificates in bundle include the one
// in certPEM; a bundle without any certificate proves nothing (true).
func holdsCert(bundle, certPEM []byte) bool {
	want, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		return true
	}
	seen := false
	for rest := bundle; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		seen = true
		if bytes.Equal(b.Bytes, want.Raw) {
			return true
		}
	}
	return !seen
}
