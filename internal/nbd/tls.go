package nbd

import (
	"crypto/tls"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/tlsconf"
)

// clientTLSConfig prepares the TLS configuration for an nbds URL: a clone
// of cfg (or a fresh config using the system roots) with ServerName set to
// the URL host when empty, and TLS 1.2 as the minimum version.
func clientTLSConfig(cfg *tls.Config, u URL) (*tls.Config, error) {
	cfg = tlsconf.Harden(cfg)
	if cfg.ServerName == "" {
		cfg.ServerName = u.Host
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		return nil, fmt.Errorf("nbd: %s: TLS over a unix socket needs TLSConfig.ServerName", u)
	}
	return cfg, nil
}

// serverTLSConfig clones cfg with Holdfast's TLS floor in force
// (tlsconf.Harden: TLS 1.2 at least, as the NBD protocol requires, and
// AEAD cipher suites only).
func serverTLSConfig(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return nil
	}
	return tlsconf.Harden(cfg)
}
