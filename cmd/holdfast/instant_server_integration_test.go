package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/nbd"
)

// serverInstant is `instant-recovery start --json` through the server.
type serverInstant struct {
	ID      string `json:"id"`
	Session int64  `json:"session"`
	Proxy   string `json:"proxy"`
	Creds   string `json:"nbd_creds"`
	Serving struct {
		ID    string `json:"id"` // the proxy's own record of the session
		Disks []struct {
			NBDURL string `json:"nbd_url"`
		} `json:"disks"`
		NBDCA string `json:"nbd_ca"`
	} `json:"serving"`
}

func startServerInstant(t *testing.T, e *env, args ...string) serverInstant {
	t.Helper()
	out := e.ok(append([]string{"instant-recovery", "start", "--json"}, args...)...)
	var ir serverInstant
	if err := json.Unmarshal([]byte(out), &ir); err != nil || ir.Session == 0 || len(ir.Serving.Disks) == 0 {
		t.Fatalf("instant-recovery start through the server: %v\n%s", err, out)
	}
	// One ID, the shape of a local session's: the server's and the proxy's.
	if ir.ID != instant.ServerID(ir.Session) || !instant.ValidID(ir.ID) || ir.Serving.ID != ir.ID {
		t.Fatalf("session IDs: %q (session %d), the proxy's %q", ir.ID, ir.Session, ir.Serving.ID)
	}
	if list := e.ok("instant-recovery", "list"); !strings.Contains(list, ir.ID) {
		t.Fatalf("instant-recovery list does not show %s:\n%s", ir.ID, list)
	}
	t.Cleanup(func() { e.run("instant-recovery", "stop", ir.ID, "--force") })
	return ir
}

// sessionTLS is what an NBD client of a server-run session trusts and
// presents: the exports' CA and the client certificate start wrote to creds.
func sessionTLS(t *testing.T, ir serverInstant, creds string) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(ir.Serving.NBDCA))
	pair, err := tls.LoadX509KeyPair(filepath.Join(creds, "client-cert.pem"), filepath.Join(creds, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return roots, pair
}

// mountCluster is a server with repository agent repo1 and proxy proxy1
// and the point of a backup of vm1 (disks of its VM disks) they made.
func mountCluster(t *testing.T, disks int) (*cluster, string) {
	t.Helper()
	c := newCluster(t, "")
	dir := c.e.dir
	writeVMDisks(t, dir, 1)
	c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 3)
	c.waitAgents("repo1", "proxy1")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", pw, "--vm", vmSpec(dir, "vm1", disks))
	res := c.runJob("nightly")
	checkJobResult(t, res, 1, disks)
	return c, res.VMs[0].Point
}

// TestDistributedInstantRecoveryAccess: a point exported through the
// server (real server, repository agent and proxy processes) answers only
// NBD over TLS with the session's client certificate, which start writes
// for QEMU; no certificate, another session's, or plain NBD is refused.
// A restore operator may not export to the whole network, an
// administrator may; NFS needs --nfs-insecure.
func TestDistributedInstantRecoveryAccess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	needTools(t, "nbdcopy", "nbdinfo", "qemu-img")
	c, point := mountCluster(t, 2)
	dir := c.e.dir
	disk1 := filepath.Join(dir, "vm1-disk1.img")

	// The default allow list is this host (127.0.0.1 as the server sees it).
	creds := filepath.Join(dir, "creds")
	addr := freeAddr(t)
	ir := startServerInstant(t, c.e, point, "--nbd", addr, "--nbd-creds", creds)
	if ir.Creds != creds || !strings.HasPrefix(ir.Serving.Disks[1].NBDURL, "nbds://") {
		t.Fatalf("session: %+v", ir)
	}
	for f, mode := range map[string]os.FileMode{"ca-cert.pem": 0o644, "client-cert.pem": 0o644, "client-key.pem": 0o600} {
		if st, err := os.Stat(filepath.Join(creds, f)); err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v, want mode %#o", f, st, err, mode)
		}
	}
	url := ir.Serving.Disks[1].NBDURL
	served := filepath.Join(dir, "served.img")
	sh(t, "nbdcopy", url+"?tls-certificates="+creds, served)
	sameFile(t, served, disk1)
	host, port, _ := net.SplitHostPort(addr)
	viaQEMU := filepath.Join(dir, "qemu.img")
	sh(t, "qemu-img", "convert", "-O", "raw", "--object", "tls-creds-x509,id=tls0,endpoint=client,dir="+creds, "--image-opts",
		fmt.Sprintf("driver=raw,file.driver=nbd,file.host=%s,file.port=%s,file.export=disk-1,file.tls-creds=tls0", host, port), viaQEMU)
	sameFile(t, viaQEMU, disk1)

	// Without the session's certificate nothing answers.
	caOnly := filepath.Join(dir, "ca-only")
	if err := os.Mkdir(caOnly, 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(creds, "ca-cert.pem"), filepath.Join(caOnly, "ca-cert.pem"))
	refused := func(what string, name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err == nil {
			t.Errorf("%s: %s read the export:\n%s", what, name, out)
		}
	}
	refused("plain NBD", "nbdinfo", strings.Replace(url, "nbds://", "nbd://", 1))
	refused("no client certificate", "nbdinfo", url+"?tls-certificates="+caOnly)
	refused("QEMU without TLS", "qemu-img", "info", "--image-opts",
		fmt.Sprintf("driver=nbd,host=%s,port=%s,export=disk-1", host, port))
	roots, pair := sessionTLS(t, ir, creds)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{{"our client with the certificate", []tls.Certificate{pair}, true}, {"our client without", nil, false}} {
		cl, err := nbd.Dial(ctx, url, nbd.ClientOptions{TLSConfig: &tls.Config{RootCAs: roots, Certificates: tc.certs}})
		if err == nil {
			buf := make([]byte, 4096)
			_, err = cl.ReadAt(buf, 0)
			cl.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}

	// An administrator may export to everyone; that session's certificate
	// does not open the first session's exports.
	creds2 := filepath.Join(dir, "creds2")
	startServerInstant(t, c.e, point, "--nbd", freeAddr(t), "--nbd-creds", creds2, "--allow", "0.0.0.0/0")
	mixed := filepath.Join(dir, "mixed")
	if err := os.Mkdir(mixed, 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(creds, "ca-cert.pem"), filepath.Join(mixed, "ca-cert.pem"))
	copyFile(t, filepath.Join(creds2, "client-cert.pem"), filepath.Join(mixed, "client-cert.pem"))
	copyFile(t, filepath.Join(creds2, "client-key.pem"), filepath.Join(mixed, "client-key.pem"))
	refused("another session's certificate", "nbdinfo", url+"?tls-certificates="+mixed)

	// A restore operator may not; nor serve NFS without --nfs-insecure.
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(c.apiPost(t, "/api/v1/tokens", `{"name":"ro","role":"restore_operator"}`)), &tok); err != nil {
		t.Fatal(err)
	}
	ro := *c.e
	ro.vars = append(append([]string(nil), c.e.vars...), "HOLDFAST_TOKEN="+tok.Token)
	r := ro.run("instant-recovery", "start", point, "--nbd", freeAddr(t), "--nbd-creds", filepath.Join(dir, "creds3"),
		"--allow", "0.0.0.0/0")
	if r.code == 0 || !strings.Contains(r.stderr, "only an administrator") {
		t.Errorf("restore operator exporting to everyone: exit %d: %s", r.code, r.stderr)
	}
	r = ro.run("instant-recovery", "start", point, "--nbd", "", "--nfs", "--nfs-ports", "0,0,0")
	if r.code == 0 || !strings.Contains(r.stderr, "nfs_insecure") {
		t.Errorf("NFS without --nfs-insecure: exit %d: %s", r.code, r.stderr)
	}
	// The client keys are kept nowhere else.
	for where, text := range map[string]string{"sessions": c.e.ok("session", "list", "--json"),
		"server log": c.server.out.String() + c.server.errOut.String(),
		"proxy log":  c.procs["proxy1"].out.String() + c.procs["proxy1"].errOut.String()} {
		if strings.Contains(text, "PRIVATE KEY") {
			t.Errorf("a client key is in the %s", where)
		}
	}
}

// TestDistributedInstantRecoveryInUse: a session served by a mount server
// with an NBD client on its exports is not stopped (409 from the server,
// exit 2, naming the client) and serves on; stop --force stops it.
func TestDistributedInstantRecoveryInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c, point := mountCluster(t, 1)
	creds := filepath.Join(c.e.dir, "creds")
	ir := startServerInstant(t, c.e, point, "--nbd", freeAddr(t), "--nbd-creds", creds)
	id := fmt.Sprint(ir.Session)

	roots, pair := sessionTLS(t, ir, creds)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := nbd.Dial(ctx, ir.Serving.Disks[0].NBDURL, nbd.ClientOptions{TLSConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := make([]byte, 4096)
	if _, err := cl.ReadAt(want, 0); err != nil {
		t.Fatal(err)
	}
	// The mount server reports its clients with its progress (every second).
	waitFor(t, "the mount server to report the client", func() bool {
		return strings.Contains(c.e.ok("instant-recovery", "list", "--json"), `"in_use"`)
	})
	if out := c.e.ok("instant-recovery", "show", id); !strings.Contains(out, "clients:\n  nbd 127.0.0.1:") {
		t.Errorf("show:\n%s", out)
	}
	r := c.e.run("instant-recovery", "stop", id)
	if r.code != exitUsage || !strings.Contains(r.stderr, "session "+id+" is in use by 1 client(s): nbd 127.0.0.1:") ||
		!strings.Contains(r.stderr, "(disk-0, since ") {
		t.Fatalf("stop with a client: exit %d: %s", r.code, r.stderr)
	}
	if r := c.e.run("session", "cancel", id); r.code != exitUsage || !strings.Contains(r.stderr, "in use by 1 client(s)") {
		t.Fatalf("session cancel with a client: exit %d: %s", r.code, r.stderr)
	}
	got := make([]byte, 4096)
	if _, err := cl.ReadAt(got, 0); err != nil || string(got) != string(want) {
		t.Fatalf("the client's read after the refusals: %v", err)
	}
	c.e.ok("instant-recovery", "stop", id, "--force")
	waitFor(t, "the session to end", func() bool {
		_, err := cl.ReadAt(got, 0)
		return err != nil
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
