package instant

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/export/nfs"
	"github.com/holdfast-backup/holdfast/internal/nbd"
	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

// serveT runs a session of a one-disk point (served over NBD and NFS) in
// this process until the test ends; it returns the record once it serves,
// a channel with Serve's result and the NFS service's address.
func serveT(t *testing.T, reg Registry, data []byte) (Record, <-chan error, string) {
	t.Helper()
	ctx := context.Background()
	r := testrepo.New(t, nil)
	m, err := pipeline.BackupPoint(ctx, r, pipeline.PointRequest{VM: "vm1", Disks: []source.Disk{memdisk.New(data)},
		ChunkSize: repo.MinChunkSize}, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	redo, _, err := reg.SessionDir(t.TempDir(), id)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := nfs.Listen("127.0.0.1", -1, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan Record, 1)
	sctx, cancel := context.WithCancel(ctx)
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(finished)
		done <- Serve(sctx, Options{ID: id, Store: r, Point: m, RedoDir: redo, NBD: "127.0.0.1:0", NFS: &ls,
			Registry: reg, Ready: func(rec Record) { ready <- rec }})
	}()
	t.Cleanup(func() { cancel(); <-finished })
	select {
	case rec := <-ready:
		return rec, done, ls.NFSTCP.Addr().String()
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	return Record{}, nil, ""
}

// TestSessionClients: a serving session lists its NBD and NFS clients on
// its control socket; asked to stop, it refuses while it has clients (and
// serves on), and stops once they are gone.
func TestSessionClients(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions"), Clock: clk}
	data := bytes.Repeat([]byte{7}, 1<<20)
	rec, done, nfsAddr := serveT(t, reg, data)
	if got, err := reg.Clients(ctx, rec.ID); err != nil || len(got) != 0 {
		t.Fatalf("clients of a fresh session: %+v %v", got, err)
	}

	c, err := nbd.Dial(ctx, rec.Disks[0].NBDURL, nbd.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nc, err := net.Dial("tcp", nfsAddr) // an NFS client holding its connection
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The server records a client at accept and its export once its side
	// of the handshake ends, which may be after the client's: wait for
	// both clients in their final state.
	want := func(got []Client) bool {
		return len(got) == 2 && got[0].Protocol == "nbd" && got[0].Export == "disk-0" && got[0].Since.Equal(t0) &&
			strings.HasPrefix(got[0].Addr, "127.0.0.1:") && got[0].Connected &&
			got[1] == (Client{Protocol: "nfs", Addr: "127.0.0.1", Since: t0, Connected: true})
	}
	var got []Client
	for deadline := time.Now().Add(20 * time.Second); !want(got); time.Sleep(10 * time.Millisecond) {
		if got, err = reg.Clients(ctx, rec.ID); err != nil || time.Now().After(deadline) {
			t.Fatalf("clients with an NBD and an NFS client: %+v %v", got, err)
		}
	}

	rep, err := reg.ask(ctx, rec.ID, "stop")
	if err != nil || rep.Stopping || len(rep.Clients) != 2 {
		t.Fatalf("stop with clients: %+v %v", rep, err)
	}
	buf := make([]byte, 4096)
	if _, err := c.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, data[:4096]) {
		t.Fatalf("the client's read after the refused stop: %v", err)
	}
	c.Close()
	nc.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got, err := reg.Clients(ctx, rec.ID); err == nil && len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed client is still listed")
		}
	}
	if rep, err := reg.ask(ctx, rec.ID, "stop"); err != nil || !rep.Stopping {
		t.Fatalf("stop without clients: %+v %v", rep, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if cur, err := reg.Load(rec.ID); err != nil || cur.State() != "stopped" {
		t.Fatalf("after the stop: %+v %v", cur, err)
	}
	if _, err := os.Stat(reg.controlPath(rec.ID)); !os.IsNotExist(err) {
		t.Errorf("control socket left: %v", err)
	}
}

// TestStopWithoutControl: a serving process that does not answer on a
// control socket is not stopped unless forced — its clients are unknown.
func TestStopWithoutControl(t *testing.T) {
	child := exec.Command("sh", "-c", `echo ready; exec sleep 600`)
	startChild(t, child)
	reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions")}
	rec := serving(t, reg, child.Process.Pid)
	if _, err := reg.Stop(context.Background(), rec.ID, StopOptions{}); !errors.Is(err, ErrNoControl) {
		t.Fatalf("Stop: %v, want ErrNoControl", err)
	}
	if !Alive(rec.PID) {
		t.Fatal("the process was stopped")
	}
	if _, err := reg.Stop(context.Background(), rec.ID, StopOptions{Force: true}); err != nil || Alive(rec.PID) {
		t.Fatalf("Stop --force: %v (alive %v)", err, Alive(rec.PID))
	}
}

// TestDiscardKeepsRunningVM: while the session's VM runs, Discard deletes
// the redo data but keeps the VM's socket and logs and the record
// ("vm-running"); once the VM ended, Discard removes the rest. A process
// that merely has the VM's PID (another start time) is not the VM.
func TestDiscardKeepsRunningVM(t *testing.T) {
	ctx := context.Background()
	vm := exec.Command("sh", "-c", `echo ready; exec sleep 600`)
	startChild(t, vm)
	start, err := ProcStart(vm.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions"), Clock: clock.NewFake(t0)}
	newRec := func(qemuStart uint64) Record {
		rec := serving(t, reg, 0)
		rec.Stopped, rec.QEMU, rec.QEMUStart = t0, vm.Process.Pid, qemuStart
		if err := reg.Save(rec); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"point.json", "qmp.sock", "console.log", "qemu.log"} {
			if err := os.WriteFile(filepath.Join(rec.RedoDir, f), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return rec
	}

	other := newRec(start + 1) // the PID now belongs to another process
	if other.VMRunning() {
		t.Fatal("a process with another start time is taken for the VM")
	}
	if d, err := reg.Discard(ctx, other); err != nil || d.VM || len(d.Left) != 0 {
		t.Fatalf("Discard: %+v %v", d, err)
	}
	if _, err := os.Stat(other.RedoDir); !os.IsNotExist(err) {
		t.Errorf("redo directory left: %v", err)
	}

	rec := newRec(start)
	d, err := reg.Discard(ctx, rec)
	if err != nil || !d.VM || strings.Join(d.Left, " ") != "console.log qemu.log qmp.sock" || d.HoldErr == nil {
		t.Fatalf("Discard while the VM runs: %+v %v", d, err)
	}
	if _, err := os.Stat(filepath.Join(rec.RedoDir, "point.json")); !os.IsNotExist(err) {
		t.Errorf("redo data left: %v", err)
	}
	cur, err := reg.Load(rec.ID)
	if err != nil || cur.State() != "vm-running" || !cur.Discarded.Equal(t0) {
		t.Fatalf("record after the discard: %+v %v", cur, err)
	}
	if _, err := reg.MigrateSession(ctx, rec.ID, MigrateOptions{Targets: map[int]string{0: "/x.img"}}); err == nil {
		t.Error("a session without redo data was migrated")
	}

	_ = vm.Process.Kill()
	for deadline := time.Now().Add(20 * time.Second); Alive(vm.Process.Pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the VM does not end")
		}
	}
	if cur.State() != "vm-ended" {
		t.Errorf("state after the VM ended: %s", cur.State())
	}
	d, err = reg.Discard(ctx, cur)
	if err != nil || d.VM || len(d.Left) != 0 || d.HoldErr != nil {
		t.Fatalf("Discard after the VM ended: %+v %v", d, err)
	}
	if _, err := os.Stat(rec.RedoDir); !os.IsNotExist(err) {
		t.Errorf("redo directory left: %v", err)
	}
	if _, err := reg.Load(rec.ID); !errors.Is(err, ErrNoSession) {
		t.Errorf("the session is still recorded: %v", err)
	}
}
