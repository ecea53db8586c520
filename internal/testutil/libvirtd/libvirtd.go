package libvirtd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EnvRequire makes a missing libvirt fail the test instead of skipping it.
const EnvRequire = "HOLDFAST_REQUIRE_LIBVIRT"

// Daemon is a running private libvirtd.
type Daemon struct {
	// Dir holds the daemon's directories (etc, run, lib, cache, log).
	Dir string
	// Socket is libvirtd's read-write unix socket.
	Socket string
	// URI connects virsh or Holdfast to it.
	URI string
}

const qemuConf = `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
`

// mounts are the directories the daemon gets privately: name under Dir,
// system path.
var mounts = [][2]string{
	{"etc", "/etc/libvirt"}, {"run", "/run/libvirt"}, {"lib", "/var/lib/libvirt"},
	{"cache", "/var/cache/libvirt"}, {"log", "/var/log/libvirt"},
}

func skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(EnvRequire) != "" {
		t.Fatalf("%s is set: %s", EnvRequire, msg)
	}
	t.Skip(msg)
}

// Start runs a private libvirtd until the test ends; domains still running
// then are destroyed first.
func Start(t testing.TB) *Daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		skip(t, "libvirtd tests need root (mount namespace, qemu as root)")
	}
	for _, tool := range []string{"libvirtd", "virsh", "unshare", "qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip(t, "%s not installed (apt-get install libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils)", tool)
		}
	}
	ensureUser(t)
	dir, err := os.MkdirTemp("", "hf-lv-") // short: unix socket paths are at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	script := "set -e\n"
	for _, m := range mounts {
		if err := os.MkdirAll(filepath.Join(dir, m[0]), 0o700); err != nil {
			t.Fatal(err)
		}
		script += fmt.Sprintf("mkdir -p %s\nmount --bind %s %s\n", m[1], filepath.Join(dir, m[0]), m[1])
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "qemu.conf"), []byte(qemuConf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "libvirtd.conf"), []byte("auth_unix_rw = \"none\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script += "exec libvirtd --pid-file " + filepath.Join(dir, "libvirtd.pid") + "\n"
	logf, err := os.Create(filepath.Join(dir, "libvirtd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start libvirtd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	d := &Daemon{Dir: dir, Socket: filepath.Join(dir, "run", "libvirt-sock")}
	d.URI = "qemu+unix:///system?socket=" + d.Socket
	t.Cleanup(func() { d.stop(t, cmd, exited) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(filepath.Join(dir, "libvirtd.log"))
			t.Fatalf("libvirtd exited: %v\n%s", err, log)
		default:
		}
		if c, err := net.Dial("unix", d.Socket); err == nil {
			c.Close()
			if _, err := d.Virsh(context.Background(), "version"); err == nil {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("libvirtd did not answer within 60 s")
		}
		time.Sleep(50 * time.Millisecond) // polling for the socket: libvirtd has no other readiness signal here
	}
}

// stop destroys running domains, then stops libvirtd and any QEMU left.
func (d *Daemon) stop(t testing.TB, cmd *exec.Cmd, exited chan error) {
	ctx := context.Background()
	if out, err := d.Virsh(ctx, "list", "--name"); err == nil {
		for _, name := range strings.Fields(out) {
			_, _ = d.Virsh(ctx, "destroy", name)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	// QEMU processes of this daemon left behind (their pid files are ours)
	pids, _ := filepath.Glob(filepath.Join(d.Dir, "run", "qemu", "*.pid"))
	for _, p := range pids {
		b, err := os.ReadFile(p)
		var pid int
		if err == nil {
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// Virsh runs virsh against the daemon and returns its output.
func (d *Daemon) Virsh(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "virsh", append([]string{"-c", d.URI}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("virsh %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// ensureUser creates the libvirt-qemu user and group libvirtd insists on.
func ensureUser(t testing.TB) {
	t.Helper()
	if exec.Command("getent", "passwd", "libvirt-qemu").Run() == nil {
		return
	}
	_ = exec.Command("groupadd", "-r", "libvirt-qemu").Run()
	if out, err := exec.Command("useradd", "-r", "-g", "libvirt-qemu", "-M", "libvirt-qemu").CombinedOutput(); err != nil &&
		exec.Command("getent", "passwd", "libvirt-qemu").Run() != nil {
		skip(t, "create user libvirt-qemu: %v: %s", err, out)
	}
}
