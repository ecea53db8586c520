package mover

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/holdfast-backup/holdfast/internal/tlsconf"
)

// HTTP/2 flow-control windows. Go's defaults (1 MiB per connection on the
// server) cap a WAN link at 1 MiB per round trip; a mover connection
// carries many chunk uploads at once.
const (
	recvWindowConn   = 64 << 20
	recvWindowStream = 16 << 20
)

// NewHTTPClient returns an HTTP client for Client: HTTP/2 over TLS with
// the given configuration (set Certificates for mutual TLS and RootCAs for
// the agent's CA), wide flow-control windows, and pings that detect a dead
// connection within about a minute.
func NewHTTPClient(tlsConfig *tls.Config) *http.Client {
	return NewHTTPClientWrapped(tlsConfig, nil)
}

// NewHTTPClientWrapped is NewHTTPClient with every new connection passed
// through wrap (nil: none) before TLS, for example to pace it
// (internal/throttle).
func NewHTTPClientWrapped(tlsConfig *tls.Config, wrap func(net.Conn) net.Conn) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	dial := d.DialContext
	if wrap != nil {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return wrap(c), nil
		}
	}
	t := &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     tlsconf.Harden(tlsConfig),
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 30 * time.Second,
		IdleConnTimeout:     2 * time.Minute,
		MaxIdleConnsPerHost: 8,
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerConnection: recvWindowConn,
			MaxReceiveBufferPerStream:     recvWindowStream,
			SendPingTimeout:               30 * time.Second,
			PingTimeout:                   20 * time.Second,
		},
	}
	return &http.Client{Transport: t}
}

// NewHTTPServer returns an http.Server for a Server: TLS with the given
// configuration (set ClientAuth to tls.RequireAndVerifyClientCert and
// ClientCAs for mutual TLS), HTTP/2 with wide flow-control windows, and
// timeouts against idle or stalled clients. Serve it with
// ListenAndServeTLS("", "") when tlsConfig carries the certificate.
func NewHTTPServer(addr string, h http.Handler, tlsConfig *tls.Config) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		TLSConfig:         tlsconf.Harden(tlsConfig),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          64,
			MaxReceiveBufferPerConnection: recvWindowConn,
			MaxReceiveBufferPerStream:     recvWindowStream,
			SendPingTimeout:               30 * time.Second,
			PingTimeout:                   20 * time.Second,
		},
	}
}
