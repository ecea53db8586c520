package instant

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/nbd"
	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/qmp"
)

// VMOptions start a QEMU VM on a session's NBD exports.
type VMOptions struct {
	Binary  string   // default qemu-system-x86_64
	Memory  int      // MiB; 0: as the point recorded (vm_memory_mib), else 1024
	CPUs    int      // 0: as the point recorded (vm_cpus), else 1
	NICs    []string // NIC models when Network is set; nil: as recorded (vm_nics), else QEMU's default
	Network bool     // false: no NIC (the recovered VM stays off the network)
	Accel   string   // default "tcg" (kvm where usable: "kvm:tcg")
	Extra   []string // more QEMU arguments (e.g. -kernel for a test guest, -S)

	nbdSocket string // the session's NBD socket for its VM ("": the TCP address)
}

// nodeName is the block node of disk n in a VM started by startVM.
func nodeName(n int) string { return "ir-disk-" + strconv.Itoa(n) }

// QMPSocket is where a session's VM listens for QMP.
func QMPSocket(redoDir string) string { return filepath.Join(redoDir, "qmp.sock") }

// startVM starts QEMU with every disk of the session on its NBD export
// (virtio, writable: the writes land in the redo data) and a QMP socket in
// the redo directory. The VM runs in its own session, so it outlives the
// serving process only when migrated (see migrateLive); its console goes to
// console.log in the redo directory. It waits for QMP on clk.
func startVM(ctx context.Context, clk clock.Clock, rec Record, o VMOptions) (*exec.Cmd, error) {
	args, err := vmArgs(rec, &o)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Binary, args...)
	log, err := os.OpenFile(filepath.Join(rec.RedoDir, "qemu.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start QEMU: %w", err)
	}
	log.Close()
	sock := QMPSocket(rec.RedoDir)
	for deadline := clk.Now().Add(30 * time.Second); ; {
		// The socket file appears when QEMU binds; it answers once it listens.
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			return cmd, nil
		}
		if clk.Now().After(deadline) {
			_ = cmd.Process.Kill()
			b, _ := os.ReadFile(filepath.Join(rec.RedoDir, "qemu.log"))
			return nil, fmt.Errorf("QEMU did not open its QMP socket: %s", strings.TrimSpace(string(b)))
		}
		if err := clk.Sleep(ctx, 20*time.Millisecond); err != nil {
			_ = cmd.Process.Kill()
			return nil, err
		}
	}
}

// vmArgs returns QEMU's arguments for the session's VM, filling the
// options left at zero, and removes a stale QMP socket.
func vmArgs(rec Record, o *VMOptions) ([]string, error) {
	if rec.NBDAddr == "" {
		return nil, errors.New("starting a VM needs the NBD exports (--nbd)")
	}
	if len(rec.Disks) > 0 && usesTLS(rec.Disks[0].NBDURL) {
		return nil, errors.New("--start-qemu uses the exports without TLS: start the session without --nbd-tls")
	}
	host, port, ok := strings.Cut(rec.NBDAddr, ":")
	if i := strings.LastIndex(rec.NBDAddr, ":"); i >= 0 {
		host, port, ok = rec.NBDAddr[:i], rec.NBDAddr[i+1:], true
	}
	if !ok {
		return nil, fmt.Errorf("NBD address %q", rec.NBDAddr)
	}
	host = strings.Trim(host, "[]")
	if o.Binary == "" {
		o.Binary = "qemu-system-x86_64"
	}
	if o.Memory <= 0 {
		o.Memory = 1024
	}
	if o.CPUs <= 0 {
		o.CPUs = 1
	}
	if o.Accel == "" {
		o.Accel = "tcg"
	}
	sock := QMPSocket(rec.RedoDir)
	_ = os.Remove(sock)
	args := []string{"-name", rec.VM + "-" + rec.ID, "-accel", o.Accel, "-m", strconv.Itoa(o.Memory),
		"-smp", strconv.Itoa(o.CPUs), "-nodefaults", "-display", "none",
		"-serial", "file:" + filepath.Join(rec.RedoDir, "console.log"),
		"-qmp", "unix:" + sock + ",server=on,wait=off"}
	server := fmt.Sprintf("server.type=inet,server.host=%s,server.port=%s", host, port)
	if o.nbdSocket != "" {
		server = "server.type=unix,server.path=" + o.nbdSocket
	}
	for _, d := range rec.Disks {
		args = append(args,
			"-blockdev", fmt.Sprintf("driver=nbd,%s,export=disk-%d,node-name=%s", server, d.Index, nodeName(d.Index)),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=%s,id=vd%d", nodeName(d.Index), d.Index))
	}
	switch {
	case !o.Network:
		args = append(args, "-nic", "none")
	default:
		for _, model := range o.NICs {
			args = append(args, "-nic", "user,model="+model)
		}
	}
	args = append(args, o.Extra...)
	return args, nil
}

// migrateLive copies disk n of the session's running VM to an image at to
// (raw, or qcow2 for a .qcow2 name) with QEMU's blockdev-mirror while the
// VM runs, and pivots the VM onto it: from then on the VM reads and writes
// production storage, and the session's exports of that disk are unused.
func migrateLive(ctx context.Context, rec Record, n int, to string, size int64) error {
	format, err := pipeline.TargetFormat(to, "")
	if err != nil {
		return err
	}
	if err := createImage(ctx, to, format, size); err != nil {
		return err
	}
	c, err := qmp.Dial(ctx, QMPSocket(rec.RedoDir))
	if err != nil {
		return fmt.Errorf("the session's VM: %w", err)
	}
	defer c.Close()
	target := "ir-mig-" + strconv.Itoa(n)
	job := "ir-mirror-" + strconv.Itoa(n)
	add := map[string]any{"driver": format, "node-name": target,
		"file": map[string]any{"driver": "file", "filename": to}}
	if err := c.Execute(ctx, "blockdev-add", add, nil); err != nil {
		return fmt.Errorf("open %s in QEMU: %w", to, err)
	}
	sub := c.Subscribe("BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_ERROR")
	defer sub.Close()
	mirror := map[string]any{"job-id": job, "device": nodeName(n), "target": target, "sync": "full"}
	if err := c.Execute(ctx, "blockdev-mirror", mirror, nil); err != nil {
		_ = c.Execute(context.WithoutCancel(ctx), "blockdev-del", map[string]any{"node-name": target}, nil)
		return fmt.Errorf("start the mirror: %w", err)
	}
	if _, err := sub.Wait(ctx, "BLOCK_JOB_READY", qmp.MatchField("device", job)); err != nil {
		_ = c.Execute(context.WithoutCancel(ctx), "block-job-cancel", map[string]any{"device": job, "force": true}, nil)
		return fmt.Errorf("mirror to %s: %w", to, err)
	}
	if err := c.Execute(ctx, "job-complete", map[string]any{"id": job}, nil); err != nil {
		return fmt.Errorf("pivot onto %s: %w", to, err)
	}
	ev, err := sub.Wait(ctx, "BLOCK_JOB_COMPLETED", qmp.MatchField("device", job))
	if err != nil {
		return fmt.Errorf("pivot onto %s: %w", to, err)
	}
	if msg := ev.Field("error"); msg != "" {
		return fmt.Errorf("mirror to %s failed: %s", to, msg)
	}
	return nil
}

// stopVM asks the session's VM to quit, then kills it after a grace time
// on clk.
func stopVM(clk clock.Clock, pid int, redoDir string) {
	if pid <= 0 || !Alive(pid) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := qmp.Dial(ctx, QMPSocket(redoDir)); err == nil {
		_ = c.Quit(ctx)
		c.Close()
	}
	for deadline := clk.Now().Add(5 * time.Second); Alive(pid) && clk.Now().Before(deadline); {
		_ = clk.Sleep(context.Background(), 50*time.Millisecond)
	}
	if Alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// FromPoint fills the options the user left at zero from the configuration
// the restore point recorded (QEMU sources record vm_memory_mib, vm_cpus,
// vm_nics).
func (o *VMOptions) FromPoint(notes map[string]string) {
	if o.Memory <= 0 {
		o.Memory, _ = strconv.Atoi(notes["vm_memory_mib"])
	}
	if o.CPUs <= 0 {
		o.CPUs, _ = strconv.Atoi(notes["vm_cpus"])
	}
	if o.NICs == nil && notes["vm_nics"] != "" {
		o.NICs = strings.Split(notes["vm_nics"], ",")
	}
}

// usesTLS reports whether an export URL is an NBD-over-TLS one.
func usesTLS(exportURL string) bool {
	u, err := nbd.ParseURL(exportURL)
	return err == nil && u.TLS
}
