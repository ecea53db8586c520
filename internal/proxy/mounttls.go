package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// mountCertValidity bounds how long a session's NBD certificates are valid:
// a session serving longer needs a restart for new ones.
const mountCertValidity = 90 * 24 * time.Hour

// mountTLS is the TLS of a mount's NBD exports: the proxy presents a
// certificate from a CA made for this session alone (caPEM: what the
// requester's NBD client trusts, reported with the exports; the CA's key is
// dropped here) for the hosts the exports listen on, and requires a client
// certificate issued by the session's client CA (clientCAPEM, from the
// server, which handed the certificate and its key to the requester only).
func mountTLS(clientCAPEM []byte, listen string, clk clock.Clock) (cfg *tls.Config, caPEM []byte, err error) {
	trust, err := pki.NewTrust(clientCAPEM, clk)
	if err != nil {
		return nil, nil, fmt.Errorf("the session's client CA from the server: %w", err)
	}
	ca, err := pki.NewSessionCA("Holdfast instant recovery exports", mountCertValidity, pki.WithClock(clk))
	if err != nil {
		return nil, nil, err
	}
	cert, err := ca.IssueServer(listenHosts(listen))
	if err != nil {
		return nil, nil, err
	}
	cfg = trust.ServerTLSConfig(cert)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return cfg, ca.CertPEM(), nil
}

// listenHosts are the names a listener on listen is reached by: its host,
// or for a wildcard address this host's name and addresses.
func listenHosts(listen string) []string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if a, err := netip.ParseAddr(host); host != "" && (err != nil || !a.IsUnspecified()) {
		return []string{host}
	}
	var hosts []string
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	hosts = append(hosts, "localhost")
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				hosts = append(hosts, p.Addr().String())
			}
		}
	}
	return hosts
}
