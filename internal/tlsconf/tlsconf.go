package tlsconf

import "crypto/tls"

// cipherSuites are the TLS 1.2 suites Holdfast accepts, strongest first.
var cipherSuites = [...]uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CipherSuites returns the TLS 1.2 cipher suites Holdfast accepts.
func CipherSuites() []uint16 { return append([]uint16(nil), cipherSuites[:]...) }

// Base returns a new configuration with Holdfast's version floor and
// cipher suites; callers add certificates, roots and verification.
func Base() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: CipherSuites()}
}

// Harden returns a clone of cfg (nil: Base()) with Base's version floor and
// cipher suites in force, whatever cfg said.
func Harden(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return Base()
	}
	cfg = cfg.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	cfg.CipherSuites = CipherSuites()
	return cfg
}
