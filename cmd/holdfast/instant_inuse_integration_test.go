package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/instant"
)

// qemuIO is an outside QEMU NBD client (qemu-io) that stays connected to
// an export and runs commands on it.
type qemuIO struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

const qemuIOPrompt = "qemu-io> "

// connectQemuIO starts qemu-io on url and waits for its first prompt (it
// is connected then).
func connectQemuIO(t *testing.T, url string) *qemuIO {
	t.Helper()
	cmd := exec.Command("qemu-io", "-f", "raw", url)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	q := &qemuIO{t: t, cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(q.close)
	if got := q.untilPrompt(); strings.TrimSpace(got) != "" {
		t.Fatalf("qemu-io on %s: %s", url, got)
	}
	return q
}

// untilPrompt reads qemu-io's output up to its next prompt.
func (q *qemuIO) untilPrompt() string {
	var b strings.Builder
	for !strings.HasSuffix(b.String(), qemuIOPrompt) {
		c, err := q.out.ReadByte()
		if err != nil {
			return b.String() + " (" + err.Error() + ")"
		}
		b.WriteByte(c)
	}
	return strings.TrimSuffix(b.String(), qemuIOPrompt)
}

// run runs one qemu-io command and returns its output.
func (q *qemuIO) run(command string) string {
	q.t.Helper()
	if _, err := io.WriteString(q.in, command+"\n"); err != nil {
		return err.Error()
	}
	return q.untilPrompt()
}

func (q *qemuIO) close() {
	_ = q.in.Close()
	_ = q.cmd.Process.Kill()
	_ = q.cmd.Wait()
}

// TestInstantRecoveryInUse: an outside QEMU NBD client (qemu-io) and an
// NFS client use a session's exports. migrate and stop refuse (exit 2),
// naming them, and leave the session serving: the NBD client reads on.
// show and list name the clients. With --force the migration proceeds and
// the image is point + the client's write.
func TestInstantRecoveryInUse(t *testing.T) {
	needTools(t, "qemu-io", "nfs-cp")
	e, img := instantEnv(t, 16<<20, map[int64][]byte{0: bytes.Repeat([]byte{0x5a}, 1<<20)}, "--chunk-size", "256KiB")
	_, mountPort, _ := net.SplitHostPort(freeAddr(t))
	_, nfsPort, _ := net.SplitHostPort(freeAddr(t))
	rec := startInstant(t, e, "latest", "--nbd", freeAddr(t), "--nfs", "--nfs-ports", "0,"+mountPort+","+nfsPort)

	// The clients: qemu-io stays connected to disk-0 and writes to it; an
	// NFS client copies the disk and keeps a connection to the NFS service.
	q := connectQemuIO(t, rec.Disks[0].NBDURL)
	if out := q.run("write -P 0xc3 2097152 65536"); !strings.Contains(out, "wrote 65536/65536") {
		t.Fatalf("qemu-io write: %s", out)
	}
	nfsURL := rec.Disks[0].NFSURL + "?nfsport=" + nfsPort + "&mountport=" + mountPort
	sh(t, "nfs-cp", nfsURL, filepath.Join(e.dir, "copied.img"))
	nfsConn, err := net.Dial("tcp", "127.0.0.1:"+nfsPort)
	if err != nil {
		t.Fatal(err)
	}
	defer nfsConn.Close()

	prod := filepath.Join(e.dir, "production.img")
	for _, args := range [][]string{{"migrate", rec.ID, "--to", prod}, {"stop", rec.ID}, {"stop", rec.ID, "--discard"}} {
		r := e.run(append([]string{"instant-recovery"}, args...)...)
		if r.code != exitUsage {
			t.Fatalf("%v with clients: exit %d, want %d\n%s%s", args, r.code, exitUsage, r.stdout, r.stderr)
		}
		t.Logf("%v: %s", args, r.stderr)
		for _, want := range []string{"session " + rec.ID + " is in use by 2 client(s)", "nbd 127.0.0.1:", "(disk-0, since ",
			"nfs 127.0.0.1 (/holdfast/" + rec.ID + ", since "} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%v: the refusal lacks %q: %s", args, want, r.stderr)
			}
		}
	}
	if _, err := os.Stat(prod); !os.IsNotExist(err) {
		t.Errorf("the refused migration wrote %s: %v", prod, err)
	}
	// The session serves on: the NBD client reads the point and its write.
	if out := q.run("read -P 0x5a 0 65536"); !strings.Contains(out, "read 65536/65536") {
		t.Fatalf("qemu-io read after the refusals: %s", out)
	}
	if out := q.run("read -P 0xc3 2097152 65536"); !strings.Contains(out, "read 65536/65536") {
		t.Fatalf("qemu-io read of its write after the refusals: %s", out)
	}

	var shown struct {
		State   string           `json:"state"`
		Clients []instant.Client `json:"clients"`
	}
	if err := json.Unmarshal([]byte(e.ok("instant-recovery", "show", rec.ID, "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.State != "serving" || len(shown.Clients) != 2 || shown.Clients[0].Protocol != "nbd" ||
		shown.Clients[0].Export != "disk-0" || shown.Clients[1].Protocol != "nfs" || !shown.Clients[1].Connected {
		t.Errorf("show: %+v", shown)
	}
	if out := e.ok("instant-recovery", "list"); !strings.Contains(out, "CLIENTS") || !strings.Contains(out, " 2 ") {
		t.Errorf("list:\n%s", out)
	}

	out := e.ok("instant-recovery", "migrate", rec.ID, "--to", prod, "--force")
	if !strings.Contains(out, "session ended") {
		t.Fatalf("migrate --force: %s", out)
	}
	want, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	copy(want[2<<20:], bytes.Repeat([]byte{0xc3}, 65536))
	if got, err := os.ReadFile(prod); err != nil || !bytes.Equal(got, want) {
		t.Errorf("production image differs from point + the client's write (%v)", err)
	}
}

// TestInstantRecoveryStopIdle: a session whose clients went away stops
// without --force; stop --force cuts a connected client off.
func TestInstantRecoveryStopIdle(t *testing.T) {
	needTools(t, "qemu-io")
	e, _ := instantEnv(t, 8<<20, map[int64][]byte{0: bytes.Repeat([]byte{0x5a}, 1<<20)})
	rec := startInstant(t, e, "latest", "--nbd", freeAddr(t))
	q := connectQemuIO(t, rec.Disks[0].NBDURL)
	if r := e.run("instant-recovery", "stop", rec.ID); r.code != exitUsage {
		t.Fatalf("stop with a client: exit %d %s", r.code, r.stderr)
	}
	q.close()
	waitFor(t, "the client's connection to end", func() bool {
		return strings.Contains(e.ok("instant-recovery", "show", rec.ID), "clients: none")
	})
	e.ok("instant-recovery", "stop", rec.ID)

	rec = startInstant(t, e, "latest", "--nbd", freeAddr(t), "--redo-dir", rec.RedoDir)
	q = connectQemuIO(t, rec.Disks[0].NBDURL)
	e.ok("instant-recovery", "stop", rec.ID, "--force")
	if instant.Alive(rec.PID) {
		t.Error("the serving process runs on after stop --force")
	}
	if out := q.run("read 0 512"); strings.Contains(out, "read 512/512") {
		t.Errorf("the client still reads after stop --force: %s", out)
	}
}

// TestInstantRecoveryKeepsRunningVMFiles: the serving process of a session
// with a VM dies (kill -9) and leaves its VM running; stop --discard
// deletes the redo data but not the running VM's QMP socket and logs, and
// keeps the session listed ("vm-running"). Once the VM ended, stop
// --discard removes the rest.
func TestInstantRecoveryKeepsRunningVMFiles(t *testing.T) {
	needTools(t, "qemu-system-x86_64")
	e, _ := instantEnv(t, 8<<20, map[int64][]byte{0: randomBytes(1 << 20)})
	rec := startInstant(t, e, "latest", "--nbd", freeAddr(t), "--start-qemu", "--qemu-memory", "64", "--qemu-arg=-S")
	if rec.QEMU == 0 || !instant.Alive(rec.QEMU) {
		t.Fatalf("no VM: %+v", rec)
	}
	t.Cleanup(func() { _ = syscall.Kill(rec.QEMU, syscall.SIGKILL) })
	if err := syscall.Kill(rec.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the serving process to die", func() bool { return !instant.Alive(rec.PID) })
	if !instant.Alive(rec.QEMU) {
		t.Fatal("the VM died with its serving process")
	}

	out := e.ok("instant-recovery", "stop", rec.ID, "--discard")
	if !strings.Contains(out, "runs on") {
		t.Errorf("stop --discard: %s", out)
	}
	for _, f := range []string{"qmp.sock", "console.log", "qemu.log"} {
		if _, err := os.Stat(filepath.Join(rec.RedoDir, f)); err != nil {
			t.Errorf("the running VM's %s was deleted: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(rec.RedoDir, "disk-0")); !os.IsNotExist(err) {
		t.Errorf("redo data left: %v", err)
	}
	if out := e.ok("instant-recovery", "list"); !strings.Contains(out, "vm-running") {
		t.Errorf("list after the discard:\n%s", out)
	}

	discardAfterVM(t, e, rec)
	if out := e.ok("instant-recovery", "list"); strings.Contains(out, rec.ID) {
		t.Errorf("the session is still listed:\n%s", out)
	}
}

// discardAfterVM ends the session's VM; then stop --discard removes its
// redo directory.
func discardAfterVM(t *testing.T, e *env, rec instant.Record) {
	t.Helper()
	if err := syscall.Kill(rec.QEMU, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the VM to end", func() bool { return !instant.Alive(rec.QEMU) })
	e.ok("instant-recovery", "stop", rec.ID, "--discard")
	if _, err := os.Stat(rec.RedoDir); !os.IsNotExist(err) {
		t.Errorf("the redo directory is left after the VM ended: %v", err)
	}
}

// waitFor polls cond until it holds (at most a minute).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
