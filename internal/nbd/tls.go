package nbd

import (
	"crypto/tls"
	"fmt"
)

// clientTLSConfig prepares the TLS configuration for an nbds URL: a clone
// of cfg (or a fresh config using the system roots) with ServerName set to
// the URL host when empty, and TLS 1.2 as the minimum version.
func clientTLSConfig(cfg *tls.Config, u URL) (*tls.Config, error) {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Host
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		return nil, fmt.Errorf("nbd: %s: TLS over a unix socket needs TLSConfig.ServerName", u)
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg, nil
}

// serverTLSConfig clones cfg and enforces TLS 1.2 as the minimum version,
// as the NBD protocol requires.
func serverTLSConfig(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return nil
	}
	cfg = cfg.Clone()
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}
