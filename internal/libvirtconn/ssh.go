package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/holdfast-backup/holdfast/internal/nbd"
)

var (
	// ErrUnknownHost is returned when known_hosts has no key for the host:
	// Holdfast never accepts an unknown host key.
	ErrUnknownHost = errors.New("host key is not in known_hosts")
	// ErrHostKeyMismatch is returned when the host presents a key other
	// than the one known_hosts records.
	ErrHostKeyMismatch = errors.New("host key does not match known_hosts")
	// ErrNoSSHKey is returned when neither ssh-agent nor a key file gives
	// a key to log in with.
	ErrNoSSHKey = errors.New("no ssh key to log in with")
)

// sshConnectTimeout bounds the TCP connect and the SSH handshake.
const sshConnectTimeout = 20 * time.Second

// sshEnv is what the SSH transport takes from the environment.
type sshEnv struct {
	home      string // ~ for ~/.ssh
	agentSock string // $SSH_AUTH_SOCK
	user      string // the local user, the default remote user
}

func osSSHEnv() sshEnv {
	e := sshEnv{agentSock: os.Getenv("SSH_AUTH_SOCK")}
	e.home, _ = os.UserHomeDir()
	if u, err := user.Current(); err == nil {
		e.user = u.Username
	}
	return e
}

// defaultKeyFiles are tried in order under ~/.ssh when the URI names no
// keyfile.
var defaultKeyFiles = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// dialSSH connects and logs in to t: the host key must be the one the
// known_hosts file records for the host (never accepted blindly); the keys
// of ssh-agent and of the key file(s) are offered.
func dialSSH(ctx context.Context, t *sshTarget, env sshEnv) (*ssh.Client, error) {
	khFile := t.knownHosts
	if khFile == "" {
		khFile = filepath.Join(env.home, ".ssh", "known_hosts")
	}
	check, err := knownhosts.New(khFile)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: known_hosts: %w (record the host key there after checking its fingerprint: ssh-keyscan)", t.addr, err)
	}
	auth, closeAgent, err := sshAuth(t, env)
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	usr := t.user
	if usr == "" {
		usr = env.user
	}
	cfg := &ssh.ClientConfig{
		User:              usr,
		Auth:              auth,
		HostKeyCallback:   hostKeyCheck(check, khFile),
		HostKeyAlgorithms: knownAlgorithms(check, t.addr),
		Timeout:           sshConnectTimeout,
	}
	ctx, cancel := context.WithTimeout(ctx, sshConnectTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t.addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	// sshd forwards a reply in several small writes with Nagle's algorithm
	// on: without quick-ACK each later piece waits for our delayed ACK.
	c, chans, reqs, err := ssh.NewClientConn(nbd.QuickAck(conn), t.addr, cfg)
	stop()
	if err != nil {
		conn.Close()
		// The library's errors name methods and keys, never the user.
		return nil, fmt.Errorf("ssh %s: %w", t.addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// hostKeyCheck turns known_hosts' verdict into Holdfast's errors, with
// the fingerprint the server presented so an operator can check it.
func hostKeyCheck(check ssh.HostKeyCallback, file string) ssh.HostKeyCallback {
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return fmt.Errorf("%w: %s presented %s %s, which %s does not list; check that fingerprint out of band and add the key (ssh-keyscan)",
				ErrUnknownHost, host, key.Type(), ssh.FingerprintSHA256(key), file)
		case errors.As(err, &ke):
			return fmt.Errorf("%w: %s presented %s %s, but %s line %d records %s: refusing to connect",
				ErrHostKeyMismatch, host, key.Type(), ssh.FingerprintSHA256(key), ke.Want[0].Filename, ke.Want[0].Line, ssh.FingerprintSHA256(ke.Want[0].Key))
		}
		return fmt.Errorf("%w: %s: %v", ErrHostKeyMismatch, host, err) // a revoked key
	}
}

// knownAlgorithms asks the server for the types of key known_hosts holds
// for addr, so a host with several keys presents the recorded one (nil:
// the library's default order, for a host known_hosts does not list).
func knownAlgorithms(check ssh.HostKeyCallback, addr string) []string {
	var ke *knownhosts.KeyError
	if err := check(addr, &net.TCPAddr{}, probeKey{}); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		default:
			algos = append(algos, t)
		}
	}
	return algos
}

// probeKey matches no recorded key, so the known_hosts check lists the
// recorded ones.
type probeKey struct{}

func (probeKey) Type() string                        { return "holdfast-probe" }
func (probeKey) Marshal() []byte                     { return []byte("holdfast-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// sshAuth offers the keys of ssh-agent ($SSH_AUTH_SOCK) and of the key
// file: keyfile= (which must be readable and unencrypted) or the first of
// ~/.ssh/id_ed25519, id_ecdsa, id_rsa that parses. The returned function
// closes the agent connection.
func sshAuth(t *sshTarget, env sshEnv) ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	closeAgent := func() {}
	if env.agentSock != "" {
		if c, err := net.Dial("unix", env.agentSock); err == nil {
			closeAgent = func() { c.Close() }
			if ss, err := agent.NewClient(c).Signers(); err == nil {
				signers = append(signers, ss...)
			}
		}
	}
	if t.keyFile != "" {
		s, err := readKey(t.keyFile)
		if err != nil {
			closeAgent()
			return nil, nil, fmt.Errorf("ssh %s: keyfile: %w", t.addr, err)
		}
		signers = append(signers, s)
	} else {
		for _, name := range defaultKeyFiles {
			if s, err := readKey(filepath.Join(env.home, ".ssh", name)); err == nil {
				signers = append(signers, s)
				break
			}
		}
	}
	if len(signers) == 0 {
		closeAgent()
		return nil, nil, fmt.Errorf("ssh %s: %w: start ssh-agent (SSH_AUTH_SOCK), give keyfile= or create ~/.ssh/id_ed25519", t.addr, ErrNoSSHKey)
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, closeAgent, nil
}

// readKey parses an unencrypted private key file. Errors name the file
// and the problem, never key bytes.
func readKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(b)
	var pp *ssh.PassphraseMissingError
	if errors.As(err, &pp) {
		return nil, fmt.Errorf("%s is protected by a passphrase: load it into ssh-agent instead", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
