package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/nbd"
)

// ErrImageInUse is matched when qemu-nbd cannot take the write lock of a
// qcow2 image because another process (usually the running VM) holds it.
var ErrImageInUse = errors.New("image is in use (is the VM still running? stop it first)")

// qemuNBDStartTimeout bounds how long qemu-nbd may take to accept a client.
const qemuNBDStartTimeout = 30 * time.Second

// Qcow2Target is a qcow2 image opened for writing through a qemu-nbd export
// on a private unix socket. It implements RollbackTarget and zeroWriter. A
// full restore creates its image through OpenTarget.
type Qcow2Target struct {
	RestoreTarget
	path   string
	client *nbd.Client
	srv    *qemuNBD
}

// OpenExistingQcow2Target opens an existing qcow2 image for writing; its
// virtual size must be exactly size. It fails with ErrImageInUse if a
// running QEMU holds the image.
func OpenExistingQcow2Target(ctx context.Context, path string, size int64) (*Qcow2Target, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	t, err := openQcow2(ctx, path)
	if err != nil {
		return nil, err
	}
	if got := t.client.Size(); got != size {
		t.Abort()
		return nil, fmt.Errorf("%s has a virtual size of %d bytes, the disk has %d", path, got, size)
	}
	return t, nil
}

func qemuImgCreate(ctx context.Context, path string, size int64) error {
	bin, err := exec.LookPath("qemu-img")
	if err != nil {
		return fmt.Errorf("writing qcow2 images needs qemu-img (install qemu-utils): %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, "create", "-q", "-f", "qcow2", path, strconv.FormatInt(size, 10))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img create %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func openQcow2(ctx context.Context, path string) (*Qcow2Target, error) {
	srv, err := startQemuNBD(path)
	if err != nil {
		return nil, err
	}
	c, err := srv.dial(ctx)
	if err != nil {
		srv.kill()
		return nil, err
	}
	if c.Info().ReadOnly() {
		c.Close()
		srv.kill()
		return nil, fmt.Errorf("qemu-nbd exports %s read-only", path)
	}
	return &Qcow2Target{RestoreTarget: RestoreTarget{W: c}, path: path, client: c, srv: srv}, nil
}

// ReadAt reads from the image.
func (t *Qcow2Target) ReadAt(p []byte, off int64) (int, error) { return t.client.ReadAt(p, off) }

// WriteAt writes to the image.
func (t *Qcow2Target) WriteAt(p []byte, off int64) (int, error) { return t.client.WriteAt(p, off) }

// WriteZeroes zeroes a range, letting qemu-nbd deallocate its clusters.
func (t *Qcow2Target) WriteZeroes(ctx context.Context, off, length int64) error {
	return t.client.WriteZeroes(ctx, off, length)
}

// Size returns the image's virtual size.
func (t *Qcow2Target) Size() int64 { return t.client.Size() }

// Close flushes the image, disconnects and checks that qemu-nbd exited
// cleanly; on failure it stops qemu-nbd.
func (t *Qcow2Target) Close() error {
	err := t.close()
	if err != nil {
		t.Abort()
	}
	return err
}

func (t *Qcow2Target) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := t.client.Flush(ctx); err != nil {
		return fmt.Errorf("flush %s: %w", t.path, err)
	}
	if err := t.client.Close(); err != nil {
		return fmt.Errorf("disconnect from qemu-nbd for %s: %w", t.path, err)
	}
	return t.srv.wait(time.Minute)
}

// Abort stops qemu-nbd without flushing. The image is left as it is (a
// restore's Target removes its temporary image itself).
func (t *Qcow2Target) Abort() {
	t.client.Close()
	t.srv.kill()
}

// qemuNBD is a qemu-nbd process serving one image on a private socket.
// Without --persistent it exits when its one client disconnects.
type qemuNBD struct {
	cmd    *exec.Cmd
	dir    string
	sock   string
	path   string
	stderr bytes.Buffer // read only after done is closed
	done   chan struct{}
	err    error // from Wait, valid after done
}

func startQemuNBD(path string) (*qemuNBD, error) {
	bin, err := exec.LookPath("qemu-nbd")
	if err != nil {
		return nil, fmt.Errorf("writing qcow2 images needs qemu-nbd (install qemu-utils): %w", err)
	}
	dir, err := os.MkdirTemp("", "holdfast-nbd-")
	if err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	q := &qemuNBD{dir: dir, sock: filepath.Join(dir, "nbd.sock"), path: path, done: make(chan struct{})}
	q.cmd = exec.Command(bin, "-f", "qcow2", "-k", q.sock, "--discard=unmap", path)
	q.cmd.Stderr = &q.stderr
	// Own process group: a terminal ^C reaches only holdfast, which then
	// stops qemu-nbd itself. Pdeathsig: no orphan if holdfast is killed.
	q.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := q.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start qemu-nbd for %s: %w", path, err)
	}
	go func() {
		q.err = q.cmd.Wait()
		close(q.done)
	}()
	return q, nil
}

// dial connects to qemu-nbd once it listens; it fails early if qemu-nbd
// exits (e.g. it could not open or lock the image).
func (q *qemuNBD) dial(ctx context.Context) (*nbd.Client, error) {
	url := "nbd+unix:///?socket=" + q.sock
	clk := clock.Real() // qemu-nbd starts in real time
	deadline := clk.Now().Add(qemuNBDStartTimeout)
	for {
		select {
		case <-q.done:
			return nil, q.exitError("qemu-nbd exited before accepting a connection")
		default:
		}
		if _, err := os.Stat(q.sock); err == nil {
			c, err := nbd.Dial(ctx, url, nbd.ClientOptions{})
			if err == nil {
				return c, nil
			}
			if clk.Now().After(deadline) {
				return nil, fmt.Errorf("connect to qemu-nbd for %s: %w", q.path, err)
			}
		} else if clk.Now().After(deadline) {
			return nil, fmt.Errorf("qemu-nbd for %s did not listen within %s", q.path, qemuNBDStartTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// exitError describes how qemu-nbd ended, with its messages. A lock
// failure wraps ErrImageInUse.
func (q *qemuNBD) exitError(what string) error {
	msg := strings.TrimSpace(q.stderr.String())
	if strings.Contains(msg, "lock") {
		return fmt.Errorf("open %s: %w; %s", q.path, ErrImageInUse, oneLine(msg))
	}
	return fmt.Errorf("%s (%s): %v: %s", what, q.path, q.err, oneLine(msg))
}

// wait waits for qemu-nbd to exit after the client disconnected and checks
// its status.
func (q *qemuNBD) wait(timeout time.Duration) error {
	select {
	case <-q.done:
	case <-time.After(timeout):
		q.kill()
		return fmt.Errorf("qemu-nbd for %s did not exit after disconnect", q.path)
	}
	defer os.RemoveAll(q.dir)
	if q.err != nil {
		return q.exitError("qemu-nbd failed")
	}
	return nil
}

// kill stops qemu-nbd at once and removes its socket directory.
func (q *qemuNBD) kill() {
	select {
	case <-q.done:
	default:
		_ = q.cmd.Process.Kill()
		<-q.done
	}
	os.RemoveAll(q.dir)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
