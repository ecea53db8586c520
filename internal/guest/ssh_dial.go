package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// connectTimeout bounds the TCP connect and the SSH handshake together, and
// the connection to the guest agent.
const connectTimeout = 10 * time.Second

// hostKeyAlgorithms lists plain host key types in OpenSSH's order of
// preference (no certificates: the pin is a key fingerprint; no SHA-1).
func hostKeyAlgorithms() []string {
	return []string{
		ssh.KeyAlgoED25519,
		ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
	}
}

// dialSSH connects and authenticates to t. It returns the fingerprint of
// the host key the server presented ("" if it never got that far). Errors
// that mean there is no network path are *noPathError; a host key mismatch
// is a *HostKeyError; anything else (bad key, authentication) is final.
func dialSSH(ctx context.Context, t *SSHTarget) (*ssh.Client, string, error) {
	signer, err := ssh.ParsePrivateKey(t.Key)
	if err != nil {
		// The parser's errors name the format problem, never key bytes.
		return nil, "", fmt.Errorf("ssh %s: private key: %w", t.Addr, err)
	}
	var seen string
	var mismatch *HostKeyError
	cfg := &ssh.ClientConfig{
		User: t.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			seen = ssh.FingerprintSHA256(key)
			if want := strings.TrimSpace(t.HostKey); want != "" && want != seen {
				mismatch = &HostKeyError{Addr: t.Addr, Want: want, Got: seen}
				return mismatch
			}
			return nil
		},
		// The key a guest presents is its Ed25519 one if it has one.
		HostKeyAlgorithms: hostKeyAlgorithms(),
		Timeout:           connectTimeout,
	}

	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, "", &noPathError{fmt.Errorf("ssh %s: %w", t.Addr, err)}
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	c, chans, reqs, err := ssh.NewClientConn(conn, t.Addr, cfg)
	stop()
	if err != nil {
		conn.Close()
		switch {
		case mismatch != nil:
			return nil, seen, mismatch
		case seen == "" && isNetworkFailure(err):
			// No SSH server answered: the path is missing, not refused.
			return nil, "", &noPathError{fmt.Errorf("ssh %s: %w", t.Addr, err)}
		}
		return nil, seen, fmt.Errorf("ssh %s: %w", t.Addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), seen, nil
}

// isNetworkFailure reports errors of the connection itself: closed or
// reset by the peer, timed out.
func isNetworkFailure(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &ne)
}
