package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Roles carried by certificates.
const (
	RoleServer     = "server"
	RoleProxy      = "proxy"
	RoleRepository = "repository"
)

// uriScheme is the scheme of the identity URI SAN holdfast:ROLE:NAME.
const uriScheme = "holdfast"

const maxNameLen = 64

// Errors returned when a peer's identity is missing or not acceptable.
var (
	ErrNoPeerCertificate = errors.New("pki: peer presented no verified certificate")
	ErrBadIdentity       = errors.New("pki: certificate carries no valid holdfast identity")
	ErrWrongRole         = errors.New("pki: peer role not allowed")
)

// ValidName reports whether name can be an agent or server name: 1 to 64
// characters from [A-Za-z0-9._-], starting with a letter or digit.
func ValidName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '.' || r == '_' || r == '-'):
		default:
			return false
		}
	}
	return true
}

func validAgentRole(role string) bool { return role == RoleProxy || role == RoleRepository }

func identityURI(role, name string) *url.URL {
	return &url.URL{Scheme: uriScheme, Opaque: role + ":" + name}
}

// certIdentity returns the role and name in cert's holdfast URI SAN, which
// must agree with its subject.
func certIdentity(cert *x509.Certificate) (role, name string, err error) {
	var found []string
	for _, u := range cert.URIs {
		if u.Scheme == uriScheme {
			found = append(found, u.Opaque)
		}
	}
	if len(found) != 1 {
		return "", "", fmt.Errorf("%w: %d holdfast URIs", ErrBadIdentity, len(found))
	}
	role, name, ok := strings.Cut(found[0], ":")
	if !ok || (role != RoleServer && !validAgentRole(role)) || !ValidName(name) {
		return "", "", fmt.Errorf("%w: %q", ErrBadIdentity, found[0])
	}
	if cert.Subject.CommonName != name || !slices.Equal(cert.Subject.OrganizationalUnit, []string{role}) {
		return "", "", fmt.Errorf("%w: subject %q disagrees with holdfast:%s", ErrBadIdentity, cert.Subject, found[0])
	}
	return role, name, nil
}

// PeerIdentity returns the role and name of the peer of a connection whose
// certificate was verified by a config from ServerTLSConfig (or
// ClientTLSConfig). It fails with ErrNoPeerCertificate when the peer sent no
// certificate (a token-authenticated API client, for example).
func PeerIdentity(cs *tls.ConnectionState) (role, name string, err error) {
	if cs == nil {
		return "", "", ErrNoPeerCertificate
	}
	if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
		return certIdentity(cs.VerifiedChains[0][0])
	}
	return "", "", ErrNoPeerCertificate
}

// RequireRole returns the peer's name if its verified role is one of roles.
func RequireRole(cs *tls.ConnectionState, roles ...string) (name string, err error) {
	role, name, err := PeerIdentity(cs)
	if err != nil {
		return "", err
	}
	if !slices.Contains(roles, role) {
		return "", fmt.Errorf("%w: %s %q (want %s)", ErrWrongRole, role, name, strings.Join(roles, " or "))
	}
	return name, nil
}
