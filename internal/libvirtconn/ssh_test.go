package libvirtconn

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/testutil/libvirtd"
	"github.com/holdfast-backup/holdfast/internal/testutil/sshdtest"
)

// sshFixture is a real sshd with its key files written for a client.
type sshFixture struct {
	srv                      *sshdtest.Server
	dir, keyFile, knownHosts string
}

func newSSHFixture(t *testing.T, config ...string) *sshFixture {
	t.Helper()
	srv := sshdtest.Start(t, config...)
	f := &sshFixture{srv: srv, dir: t.TempDir()}
	f.keyFile = filepath.Join(f.dir, "id")
	f.knownHosts = filepath.Join(f.dir, "known_hosts")
	writeT(t, f.keyFile, srv.ClientKey)
	f.trust(t, srv.HostPub)
	return f
}

// trust makes known_hosts record key for the server.
func (f *sshFixture) trust(t *testing.T, key ssh.PublicKey) {
	t.Helper()
	writeT(t, f.knownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(f.srv.Addr)}, key)+"\n"))
}

func (f *sshFixture) target() *sshTarget {
	return &sshTarget{user: "root", addr: f.srv.Addr, keyFile: f.keyFile, knownHosts: f.knownHosts}
}

func writeT(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestSSHHostKey: a host key known_hosts does not list, or lists another
// key for, is refused with an error naming the presented fingerprint and
// not the user.
func TestSSHHostKey(t *testing.T) {
	f := newSSHFixture(t)
	ctx := ctxT(t)
	env := sshEnv{home: t.TempDir()}

	c, err := dialSSH(ctx, f.target(), env)
	if err != nil {
		t.Fatalf("known host refused: %v", err)
	}
	c.Close()

	// A hashed known_hosts line (HashKnownHosts yes) is honoured too.
	writeT(t, f.knownHosts, []byte(knownhosts.Line([]string{knownhosts.HashHostname(knownhosts.Normalize(f.srv.Addr))}, f.srv.HostPub)+"\n"))
	if c, err = dialSSH(ctx, f.target(), env); err != nil {
		t.Fatalf("hashed known_hosts line: %v", err)
	}
	c.Close()

	_, other := sshdtest.NewKeyPair(t)
	f.trust(t, other)
	_, err = dialSSH(ctx, f.target(), env)
	if !errors.Is(err, ErrHostKeyMismatch) || !strings.Contains(err.Error(), f.srv.HostKey) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(other)) {
		t.Fatalf("wrong host key: %v", err)
	}

	writeT(t, f.knownHosts, nil)
	_, err = dialSSH(ctx, f.target(), env)
	if !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), f.srv.HostKey) {
		t.Fatalf("unknown host: %v", err)
	}

	tg := f.target()
	tg.knownHosts = ""
	_, err = dialSSH(ctx, tg, env) // ~/.ssh/known_hosts does not exist
	if err == nil || !strings.Contains(err.Error(), "known_hosts") {
		t.Fatalf("missing known_hosts: %v", err)
	}
	for _, e := range []error{err} {
		if strings.Contains(e.Error(), "root") {
			t.Fatalf("error names the user: %v", e)
		}
	}
}

// TestSSHAuth: the key of ssh-agent, or ~/.ssh/id_ed25519 by default, logs
// in; a wrong key is refused; no key at all is a clear error.
func TestSSHAuth(t *testing.T) {
	f := newSSHFixture(t)
	ctx := ctxT(t)
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeT(t, filepath.Join(home, ".ssh", "known_hosts"), mustRead(t, f.knownHosts))
	tg := &sshTarget{user: "root", addr: f.srv.Addr}

	_, err := dialSSH(ctx, tg, sshEnv{home: home})
	if !errors.Is(err, ErrNoSSHKey) {
		t.Fatalf("no key: %v", err)
	}

	// ssh-agent.
	key, err := ssh.ParseRawPrivateKey(f.srv.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(kr, c); c.Close() }()
		}
	}()
	c, err := dialSSH(ctx, tg, sshEnv{home: home, agentSock: sock})
	if err != nil {
		t.Fatalf("agent key: %v", err)
	}
	c.Close()

	// A wrong default key file is refused by the server.
	wrong, _ := sshdtest.NewKeyPair(t)
	writeT(t, filepath.Join(home, ".ssh", "id_ed25519"), wrong)
	if _, err := dialSSH(ctx, tg, sshEnv{home: home}); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("wrong key: %v", err)
	}
	// The right one, found by default.
	writeT(t, filepath.Join(home, ".ssh", "id_ed25519"), f.srv.ClientKey)
	c, err = dialSSH(ctx, tg, sshEnv{home: home})
	if err != nil {
		t.Fatalf("~/.ssh/id_ed25519: %v", err)
	}
	c.Close()

	// A passphrase-protected keyfile: use the agent, says the error.
	block, err := ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte("secret passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	tg.keyFile = filepath.Join(home, "enc")
	writeT(t, tg.keyFile, pem.EncodeToMemory(block))
	if _, err := dialSSH(ctx, tg, sshEnv{home: home}); err == nil || !strings.Contains(err.Error(), "passphrase: load it into ssh-agent") {
		t.Fatalf("encrypted keyfile: %v", err)
	}

	tg.keyFile = filepath.Join(home, "missing")
	if _, err := dialSSH(ctx, tg, sshEnv{home: home}); err == nil || !strings.Contains(err.Error(), "keyfile") {
		t.Fatalf("missing keyfile: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSSHHost: through one SSH connection, a unix socket on the far host is
// dialled (direct-streamlocal) and a run directory made and removed there.
func TestSSHHost(t *testing.T) {
	f := newSSHFixture(t)
	ctx := ctxT(t)
	client, err := dialSSH(ctx, f.target(), sshEnv{home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := &Conn{uri: "qemu+ssh://root@" + f.srv.Addr + "/system", ssh: client}
	defer func() { c.ssh.Close() }()

	sock := filepath.Join(t.TempDir(), "echo.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		s, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(s, s)
		s.Close()
	}()
	conn, err := c.Dialer()(ctx, "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the tunnel: %q %v", buf, err)
	}
	conn.Close()
	if _, err := c.Dialer()(ctx, "tcp", "127.0.0.1:22"); err == nil {
		t.Fatal("a TCP address was dialled")
	}

	parent := filepath.Join(t.TempDir(), "it's here")
	if err := os.Mkdir(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"Remove", "RemoveAll", "connection dropped"} {
		d, err := c.MkdirTemp(ctx, parent, "holdfast-libvirt-")
		if err != nil {
			t.Fatal(err)
		}
		dir := d.Path
		if st, err := os.Stat(dir); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 || !strings.HasPrefix(filepath.Base(dir), "holdfast-libvirt-") {
			t.Fatalf("run dir %s: %v %v", dir, st, err)
		}
		writeT(t, filepath.Join(dir, "vda.scratch"), []byte("x"))
		switch how {
		case "Remove":
			err = d.Remove(ctx)
		case "RemoveAll":
			err = c.RemoveAll(ctx, dir)
			_ = d.Remove(ctx)
		default: // a killed Holdfast: sshd ends the command's stdin, which removes the directory
			client.Close()
			waitGone(t, dir)
		}
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s: run dir left: %v", how, err)
		}
	}
	if client, err = dialSSH(ctx, f.target(), sshEnv{home: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	c.ssh = client
	if _, err := c.MkdirTemp(ctx, filepath.Join(parent, "missing"), "x-"); err == nil || !strings.Contains(err.Error(), "on the libvirt host") ||
		!strings.Contains(err.Error(), "No such file") {
		t.Fatalf("mkdir in a missing parent: %v", err)
	}
}

// TestDialSSHLibvirtd: Dial reaches a private libvirtd through sshd.
func TestDialSSHLibvirtd(t *testing.T) {
	d := libvirtd.Start(t)
	f := newSSHFixture(t)
	uri := "qemu+ssh://root@" + f.srv.Addr + "/system?socket=" + d.Socket + "&keyfile=" + f.keyFile + "&known_hosts=" + f.knownHosts
	c, err := dial(ctxT(t), uri, sshEnv{home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Remote() || strings.Contains(c.URI(), "root") {
		t.Fatalf("remote %v, URI %s", c.Remote(), c.URI())
	}
	if _, err := c.ConnectGetLibVersion(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The wrong socket on the far host: a clear error, no user.
	_, err = dial(ctxT(t), strings.Replace(uri, d.Socket, d.Socket+".missing", 1), sshEnv{home: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "on the libvirt host") || strings.Contains(err.Error(), "root@") {
		t.Fatalf("missing socket: %v", err)
	}
}

// waitGone waits until path no longer exists.
func waitGone(t *testing.T, path string) {
	t.Helper()
	for deadline := clock.Real().Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return
		}
		if clock.Real().Now().After(deadline) {
			t.Fatalf("%s still exists", path)
		}
	}
}

// TestSSHStreamLocalRefused: a server that forbids stream-local forwarding
// gives an error that says so (Holdfast runs no helper command instead).
func TestSSHStreamLocalRefused(t *testing.T) {
	f := newSSHFixture(t, "AllowStreamLocalForwarding no")
	ctx := ctxT(t)
	client, err := dialSSH(ctx, f.target(), sshEnv{home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c := &Conn{ssh: client}
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := c.DialUnix(ctx, sock); err == nil || !strings.Contains(err.Error(), "must allow stream-local forwarding") {
		t.Fatalf("forbidden stream-local forwarding: %v", err)
	}
}
