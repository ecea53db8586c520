package qmp

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// needTools skips the test when a QEMU tool is not installed.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed (apt-get install -y qemu-system-x86 qemu-utils libnbd-bin)", n)
		}
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// run runs a command and fails the test unless it exits 0.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// qemuProc is a QEMU process (qemu-system or qemu-storage-daemon).
type qemuProc struct {
	cmd    *exec.Cmd
	dir    string
	qmp    string // QMP socket path
	exited chan struct{}

	mu     sync.Mutex
	stderr bytes.Buffer
}

func (p *qemuProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *qemuProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startQEMU starts name with args and waits for its QMP socket. The process
// is killed at the end of the test.
func startQEMU(t *testing.T, dir, qmpSock, name string, args ...string) *qemuProc {
	t.Helper()
	p := &qemuProc{dir: dir, qmp: qmpSock, exited: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(qmpSock); err == nil {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited: %s", name, p.output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no QMP socket after 10 s: %s", name, p.output())
		}
	}
}

// newDisk creates a 64 MiB qcow2 image in dir.
func newDisk(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", path, "64M")
	return path
}

// startQSD runs qemu-storage-daemon with disk as node disk0 (over proto0).
func startQSD(t *testing.T, dir, disk string) *qemuProc {
	t.Helper()
	sock := filepath.Join(dir, "qmp.sock")
	return startQEMU(t, dir, sock, "qemu-storage-daemon",
		"--blockdev", "driver=file,filename="+disk+",node-name=proto0",
		"--blockdev", "driver=qcow2,file=proto0,node-name=disk0",
		"--chardev", "socket,path="+sock+",server=on,wait=off,id=qmp0",
		"--monitor", "chardev=qmp0")
}

// startVM runs a stopped (-S) q35 VM with disk as virtio-blk device vda on
// node disk0, plus extra arguments.
func startVM(t *testing.T, dir, disk string, extra ...string) *qemuProc {
	t.Helper()
	sock := filepath.Join(dir, "qmp.sock")
	args := []string{"-accel", "tcg", "-S", "-nodefaults", "-display", "none",
		"-machine", "q35", "-m", "128",
		"-blockdev", "driver=file,filename=" + disk + ",node-name=proto0",
		"-blockdev", "driver=qcow2,file=proto0,node-name=disk0",
		"-device", "virtio-blk-pci,drive=disk0,id=vda",
		"-qmp", "unix:" + sock + ",server=on,wait=off"}
	return startQEMU(t, dir, sock, "qemu-system-x86_64", append(args, extra...)...)
}

func dialProc(t *testing.T, ctx context.Context, p *qemuProc) *Client {
	t.Helper()
	// QEMU creates the socket file when it binds, a moment before it
	// listens: a refused connection right after start is retried.
	c, err := Dial(ctx, "unix://"+p.qmp)
	for i := 0; err != nil && errors.Is(err, syscall.ECONNREFUSED) && i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		c, err = Dial(ctx, "unix://"+p.qmp)
	}
	if err != nil {
		t.Fatalf("Dial: %v\n%s", err, p.output())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exec runs a QMP command that must succeed.
func mustExec(t *testing.T, ctx context.Context, c *Client, cmd string, args, result any) {
	t.Helper()
	if err := c.Execute(ctx, cmd, args, result); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
