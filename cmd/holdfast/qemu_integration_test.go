package main

import (
	"bytes"
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

	"github.com/holdfast-backup/holdfast/internal/qmp"
)

// testVM is a paused QEMU (TCG, no guest OS) with one qcow2 disk.
type testVM struct {
	t        *testing.T
	image    string
	kill     func()
	qmpSock  string
	expected []byte // what the disk holds, kept in step with every write
}

func startVM(t *testing.T, dir string) *testVM {
	t.Helper()
	needTools(t, "qemu-system-x86_64", "qemu-img", "qemu-io")
	q := filepath.Join(dir, "vm.qcow2")
	sh(t, "qemu-img", "create", "-q", "-f", "qcow2", q, "64M")
	sh(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 4M", "-c", "write -P 0x22 30M 1M", q)
	vm := &testVM{t: t, qmpSock: filepath.Join(dir, "qmp.sock"), expected: make([]byte, 64<<20), image: q}
	vm.patch(0, 4<<20, 0x11)
	vm.patch(30<<20, 1<<20, 0x22)
	vm.boot()
	return vm
}

// boot starts QEMU on the VM's image; kill stops it like a crash.
func (vm *testVM) boot() {
	t, q := vm.t, vm.image
	os.Remove(vm.qmpSock)
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-S", "-nodefaults", "-display", "none",
		"-blockdev", "driver=file,filename="+q+",node-name=proto0",
		"-blockdev", "driver=qcow2,file=proto0,node-name=disk0",
		"-device", "virtio-blk-pci,drive=disk0,id=vda",
		"-qmp", "unix:"+vm.qmpSock+",server=on,wait=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	vm.kill = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	t.Cleanup(func() {
		vm.kill()
		if t.Failed() {
			t.Logf("qemu stderr: %s", stderr.String())
		}
	})
	for i := 0; i < 500; i++ {
		// The socket file appears when QEMU binds; it answers once it listens.
		if conn, err := net.Dial("unix", vm.qmpSock); err == nil {
			conn.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("QEMU did not create its QMP socket: %s", stderr.String())
}

func (vm *testVM) patch(off, n int, b byte) {
	copy(vm.expected[off:off+n], bytes.Repeat([]byte{b}, n))
}

// qmp runs fn on a fresh QMP connection (Holdfast's backup must not hold it).
func (vm *testVM) qmp(fn func(ctx context.Context, c *qmp.Client)) {
	vm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := qmp.Dial(ctx, vm.qmpSock)
	if err != nil {
		vm.t.Fatal(err)
	}
	defer c.Close()
	fn(ctx, c)
}

// write makes a guest write through the virtio device.
func (vm *testVM) write(off, n int, b byte) {
	vm.t.Helper()
	vm.qmp(func(ctx context.Context, c *qmp.Client) {
		cmd := fmt.Sprintf("qemu-io -d /machine/peripheral/vda/virtio-backend \"write -P 0x%02x %d %d\"", b, off, n)
		if out, err := c.HumanMonitorCommand(ctx, cmd); err != nil || out != "" {
			vm.t.Fatalf("%s: %q %v", cmd, out, err)
		}
	})
	vm.patch(off, n, b)
}

// assertClean checks that no Holdfast object is left in QEMU and that the
// disk carries exactly one Holdfast bitmap.
func (vm *testVM) assertClean() {
	vm.t.Helper()
	vm.qmp(func(ctx context.Context, c *qmp.Client) {
		var exports []map[string]any
		if err := c.Execute(ctx, "query-block-exports", nil, &exports); err != nil || len(exports) != 0 {
			vm.t.Fatalf("exports left: %v %v", exports, err)
		}
		jobs, err := c.BlockJobs(ctx)
		if err != nil || len(jobs) != 0 {
			vm.t.Fatalf("jobs left: %v %v", jobs, err)
		}
		nodes, err := c.QueryNamedBlockNodes(ctx, true)
		if err != nil {
			vm.t.Fatal(err)
		}
		for _, n := range nodes {
			if strings.HasPrefix(n.NodeName, "hf-") {
				vm.t.Fatalf("node left: %s", n.NodeName)
			}
			if n.NodeName == "disk0" {
				hf := 0
				for _, b := range n.DirtyBitmaps {
					if strings.HasPrefix(b.Name, "hf-") {
						hf++
						if !b.Recording {
							vm.t.Errorf("bitmap %s is not recording", b.Name)
						}
					}
				}
				if hf != 1 {
					vm.t.Fatalf("disk0 has %d holdfast bitmaps: %+v", hf, n.DirtyBitmaps)
				}
			}
		}
	})
}

func (e *env) restoreEquals(point string, want []byte) {
	e.t.Helper()
	out := filepath.Join(e.dir, "restored-"+point+".img")
	e.ok("restore", point, "--to", out, "--force") // a point may be checked twice
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		e.t.Fatalf("restore of %s differs from the disk at backup time", point)
	}
}

func TestQemuSourceIncremental(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	vm := startVM(t, e.dir)
	src := "qemu://" + vm.qmpSock

	b1 := e.backupJSON("vmq", src)
	d := b1.Disks[0]
	if d.Transport != "direct" || d.Format != "qcow2" || d.Size != 64<<20 || d.BytesRead != 5<<20 ||
		!strings.Contains(d.CBT, "no previous") || !strings.Contains(b1.Notes["transport_choice"], "direct: used") {
		t.Fatalf("first backup: %+v %v", d, b1.Notes)
	}
	if b1.Notes["vm_memory_mib"] != "128" || b1.Notes["vm_cpus"] != "1" { // recorded for instant recovery
		t.Errorf("VM configuration not recorded: %v", b1.Notes)
	}
	vm.assertClean()
	want1 := bytes.Clone(vm.expected)

	vm.write(16<<20, 128<<10, 0xcc)
	vm.write(40<<20+100, 300<<10, 0xdd) // crosses into a second chunk
	b2 := e.backupJSON("vmq", src)
	d = b2.Disks[0]
	if d.CBT != "used" || d.BytesRead != 3*256<<10 {
		t.Fatalf("incremental: cbt %q read %d, want 3 chunks (%v)", d.CBT, d.BytesRead, d.Warnings)
	}
	if d.ChangeBase != b1.Disks[0].ChangeID || !strings.HasPrefix(d.ChangeID, "hf-") || d.ChangeID == d.ChangeBase {
		t.Fatalf("bitmaps: base %q (want %q), new %q", d.ChangeBase, b1.Disks[0].ChangeID, d.ChangeID)
	}
	vm.assertClean()
	want2 := bytes.Clone(vm.expected)

	// Lost bitmap: removed by hand. The backup falls back and warns.
	vm.qmp(func(ctx context.Context, c *qmp.Client) {
		nodes, _ := c.QueryNamedBlockNodes(ctx, true)
		for _, n := range nodes {
			for _, b := range n.DirtyBitmaps {
				if n.NodeName == "disk0" && strings.HasPrefix(b.Name, "hf-") {
					if err := c.Execute(ctx, "block-dirty-bitmap-remove", qmp.Bitmap{Node: "disk0", Name: b.Name}, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	})
	vm.write(2<<20, 4096, 0xee)
	b3 := e.backupJSON("vmq", src)
	d = b3.Disks[0]
	if !strings.Contains(d.CBT, "gone") || len(d.Warnings) == 0 || d.BytesRead != 5<<20+768<<10 {
		t.Fatalf("lost bitmap: cbt %q warnings %v read %d", d.CBT, d.Warnings, d.BytesRead)
	}
	vm.assertClean()
	want3 := bytes.Clone(vm.expected)

	e.restoreEquals(b1.Point, want1)
	e.restoreEquals(b2.Point, want2)
	e.restoreEquals(b3.Point, want3)
	e.ok("verify", "--read-data")
}

// TestQemuSourceFailureKeepsChanges: an interrupted and a killed backup
// leave nothing behind in QEMU (the next run cleans up) and lose no dirty
// bits: the next incremental still reads every change since the last
// committed point.
func TestQemuSourceFailureKeepsChanges(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	vm := startVM(t, e.dir)
	src := "qemu://" + vm.qmpSock
	e.backupJSON("vmq", src)

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		vm.write(8<<20, 8<<20, byte(sig)) // changes before the failed run (32 s to read at the limit)
		cmd := e.command(context.Background(), "backup", "--name", "vmq", "--read-limit", "256KiB", src)
		// Stop it once it stores the first changed chunk: it has made its
		// snapshot and exports and is reading (32 s at the limit).
		chunks := countChunks(t, e.repo)
		done := startUntil(t, cmd, "a new chunk", func() bool { return countChunks(t, e.repo) > chunks })
		_ = cmd.Process.Signal(sig)
		<-done
		if code := cmd.ProcessState.ExitCode(); sig == syscall.SIGINT && code != exitInterrupted {
			t.Fatalf("interrupted backup exit %d", code)
		}
		if sig == syscall.SIGINT {
			vm.assertClean()
		}
	}
	vm.write(50<<20, 4096, 0x99) // a change after the failed runs
	b := e.backupJSON("vmq", src)
	d := b.Disks[0]
	if d.CBT != "used" || d.BytesRead != 33*256<<10 {
		t.Fatalf("after failures: cbt %q read %d (want the 33 chunks changed since the last point) %v", d.CBT, d.BytesRead, d.Warnings)
	}
	if !strings.Contains(b.Notes["cleaned_leftovers"], "export") {
		t.Errorf("the killed run's leftovers were not reported: %v", b.Notes)
	}
	vm.assertClean()
	e.restoreEquals(b.Point, vm.expected)
}

func TestQemuSourceTransports(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	vm := startVM(t, e.dir)
	src := "qemu://" + vm.qmpSock
	tlsDir := filepath.Join(e.dir, "tls")
	writeTLSDir(t, tlsDir)
	tests := []struct {
		name      string
		args      []string
		transport string
	}{
		{"nbd over tcp", []string{"--transport", "nbd"}, "nbd"},
		{"nbd over tls", []string{"--transport", "nbd", "--nbd-tls", tlsDir, "--tls-ca", filepath.Join(tlsDir, "ca-cert.pem")}, "nbd+tls"},
		{"hotadd", []string{"--transport", "hotadd"}, "hotadd"},
		{"direct", []string{"--transport", "direct"}, "direct"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vm.write((10+i)<<20, 4096, byte(0x40+i))
			b := e.backupJSON("vmq", append(tc.args, src)...)
			if d := b.Disks[0]; d.Transport != tc.transport {
				t.Fatalf("transport %q, want %q", d.Transport, tc.transport)
			}
			vm.assertClean()
			e.restoreEquals(b.Point, vm.expected)
		})
	}
	// TLS with a CA that did not sign the server's certificate is refused.
	other := filepath.Join(e.dir, "other")
	writeTLSDir(t, other)
	r := e.run("backup", "--name", "vmq", "--transport", "nbd", "--nbd-tls", tlsDir, "--tls-ca", filepath.Join(other, "ca-cert.pem"), src)
	if r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("wrong CA accepted: %+v", r)
	}
	vm.assertClean()
}

// TestQemuSource4TiB: a 4 TiB sparse disk backs up through QEMU's NBD
// export in seconds, reading only its data, and restores sparse.
func TestQemuSource4TiB(t *testing.T) {
	needTools(t, "qemu-system-x86_64", "qemu-img", "qemu-io")
	e := newEnv(t)
	e.init()
	q := filepath.Join(e.dir, "big.qcow2")
	const size = 4 << 40
	sh(t, "qemu-img", "create", "-q", "-f", "qcow2", q, "4T")
	sh(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x61 0 1M", "-c", fmt.Sprintf("write -P 0x7a %d 1M", int64(size)-1<<20), q)
	sock := filepath.Join(e.dir, "qmp.sock")
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-S", "-nodefaults", "-display", "none",
		"-blockdev", "driver=file,filename="+q+",node-name=proto0",
		"-blockdev", "driver=qcow2,file=proto0,node-name=disk0",
		"-device", "virtio-blk-pci,drive=disk0,id=vda", "-qmp", "unix:"+sock+",server=on,wait=off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, transport := range []string{"hotadd", "direct"} {
		start := time.Now()
		b := e.backupJSON("big", "--transport", transport, "qemu://"+sock)
		d := b.Disks[0]
		// The first backup reads the 2 MiB of data; the second finds no
		// dirty block and reads nothing.
		if d.Size != size || d.BytesRead != int64(1-i)*2<<20 || d.BytesZero != size-2<<20 || d.BytesReused != int64(i)*2<<20 {
			t.Fatalf("%s: 4 TiB backup: %+v", transport, d)
		}
		t.Logf("%s: 4 TiB disk backed up in %s", transport, time.Since(start))
	}
	out := filepath.Join(e.dir, "big.raw")
	e.ok("restore", "latest", "--to", out)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var sys syscall.Stat_t
	_ = syscall.Stat(out, &sys)
	if st.Size() != size || sys.Blocks*512 > 8<<20 {
		t.Fatalf("restored size %d, %d bytes allocated", st.Size(), sys.Blocks*512)
	}
	for off, want := range map[int64]byte{0: 0x61, 1<<20 - 1: 0x61, 1 << 20: 0, 2 << 40: 0, size - 1<<20: 0x7a, size - 1: 0x7a} {
		b := make([]byte, 1)
		_, _ = f.ReadAt(b, off)
		if b[0] != want {
			t.Errorf("byte at %d = %#x, want %#x", off, b[0], want)
		}
	}
	os.Remove(out)
}

// TestQemuSourceAfterCrash: QEMU killed and restarted loses the dirty
// bitmap (it is saved only on a clean shutdown); the next backup reads the
// whole disk with hash compare, warns, and the chain of bitmaps resumes.
func TestQemuSourceAfterCrash(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	vm := startVM(t, e.dir)
	src := "qemu://" + vm.qmpSock
	e.backupJSON("vmq", src)
	vm.write(20<<20, 4096, 0x5c)
	vm.qmp(func(ctx context.Context, c *qmp.Client) { // the guest flushed its write
		if _, err := c.HumanMonitorCommand(ctx, `qemu-io -d /machine/peripheral/vda/virtio-backend "flush"`); err != nil {
			t.Fatal(err)
		}
	})
	vm.kill()
	vm.boot() // the write above is in the image; the bitmap is gone
	b := e.backupJSON("vmq", src)
	d := b.Disks[0]
	if !strings.HasPrefix(d.CBT, "full read") || len(d.Warnings) == 0 || d.BytesRead != 5<<20+256<<10 {
		t.Fatalf("after a crash: cbt %q warnings %v read %d", d.CBT, d.Warnings, d.BytesRead)
	}
	e.restoreEquals(b.Point, vm.expected)
	vm.write(40<<20, 4096, 0x6d)
	b = e.backupJSON("vmq", src)
	if d := b.Disks[0]; d.CBT != "used" || d.BytesRead != 256<<10 {
		t.Fatalf("incremental after recovery: cbt %q read %d", d.CBT, d.BytesRead)
	}
	e.restoreEquals(b.Point, vm.expected)
}
