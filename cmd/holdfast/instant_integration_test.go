package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/qmp"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/testutil/tinyguest"
)

// chunkFiles lists a repository's chunk files (the chunk set).
func chunkFiles(t *testing.T, repoDir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(repoDir, "chunks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, repoDir))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// instantEnv is a repository (repo init with initArgs) holding a backup of
// VM "vm": d.img, size bytes with pieces written; sessions are recorded
// in e.dir/state. It returns the environment and the image.
func instantEnv(t *testing.T, size int64, pieces map[int64][]byte, initArgs ...string) (*env, string) {
	t.Helper()
	e := newEnv(t)
	e.vars = append(e.vars, "HOLDFAST_STATE_DIR="+filepath.Join(e.dir, "state"))
	e.init(initArgs...)
	img := filepath.Join(e.dir, "d.img")
	writeImage(t, img, size, pieces)
	e.backupJSON("vm", img)
	return e, img
}

// startInstant runs `instant-recovery start … --json` and returns the record.
func startInstant(t *testing.T, e *env, args ...string) instant.Record {
	t.Helper()
	out := e.ok(append([]string{"instant-recovery", "start", "--json"}, args...)...)
	var rec instant.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.ID == "" {
		t.Fatalf("instant-recovery start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if instant.Alive(rec.PID) {
			e.run("instant-recovery", "stop", rec.ID, "--force")
		}
	})
	return rec
}

// TestInstantRecoveryNBD: a tiny guest backed up, booted straight from the
// backup over NBD (the console shows the marker on its disk), its writes
// kept in the redo data, the repository untouched; restarted on the same
// redo data it sees its earlier writes; migrated, the image equals what
// the VM saw.
func TestInstantRecoveryNBD(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	needTools(t, "qemu-system-x86_64", "nbdcopy", "nbdinfo")
	g := tinyguest.Build(t)
	e := newEnv(t)
	e.vars = append(e.vars, "HOLDFAST_STATE_DIR="+filepath.Join(e.dir, "state"))
	e.init("--chunk-size", "256KiB")
	disk := filepath.Join(e.dir, "vm-disk.img")
	tinyguest.MakeDisk(t, disk, 64<<20, "instant-recovery-marker-42")
	bj := e.backupJSON("tiny", disk)
	before := chunkFiles(t, e.repo)

	addr := freeAddr(t)
	rec := startInstant(t, e, "latest", "--nbd", addr)
	if len(rec.Disks) != 1 || rec.Disks[0].NBDURL != "nbd://"+addr+"/disk-0" || rec.Point != bj.Point {
		t.Fatalf("session: %+v", rec)
	}
	// The export reads exactly the backed-up disk.
	exported := filepath.Join(e.dir, "exported.img")
	sh(t, "nbdcopy", rec.Disks[0].NBDURL, exported)
	restored := filepath.Join(e.dir, "restored.img")
	e.ok("restore", bj.Point, "--disk", "0", "--to", restored)
	sameFile(t, exported, restored)
	if out := e.ok("instant-recovery", "list"); !strings.Contains(out, rec.ID) || !strings.Contains(out, "serving") {
		t.Fatalf("list:\n%s", out)
	}

	console, took := tinyguest.Boot(t, g, 2*time.Minute, "-drive", "file="+rec.Disks[0].NBDURL+",format=raw,if=virtio")
	if !strings.Contains(console, "HOLDFAST-MARKER: instant-recovery-marker-42") {
		t.Fatalf("guest console lacks the marker:\n%s", console)
	}
	t.Logf("booted from the backup over NBD in %s", took.Round(time.Millisecond))
	seen := filepath.Join(e.dir, "seen.img")
	sh(t, "nbdcopy", rec.Disks[0].NBDURL, seen)
	if out := e.ok("verify", "--read-data"); !strings.Contains(out, "no errors found") { // while serving
		t.Fatalf("verify during the session: %s", out)
	}

	e.ok("instant-recovery", "stop", rec.ID)
	redo := filepath.Join(rec.RedoDir, "disk-0")
	st, err := os.Stat(filepath.Join(redo, "redo.img"))
	if err != nil || st.Size() != 64<<20 || st.Sys().(*syscall.Stat_t).Blocks == 0 {
		t.Fatalf("the guest's writes did not land in the redo file: %v %v", st, err)
	}
	if after := chunkFiles(t, e.repo); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatal("the chunk set changed while the VM ran from the backup")
	}
	if out := e.ok("verify", "--read-data"); !strings.Contains(out, "no errors found") {
		t.Fatalf("verify: %s", out)
	}

	// Restarted on the same redo data, the VM sees its earlier writes.
	rec2 := startInstant(t, e, "latest", "--nbd", addr, "--redo-dir", rec.RedoDir)
	console, _ = tinyguest.Boot(t, g, 2*time.Minute, "-drive", "file="+rec2.Disks[0].NBDURL+",format=raw,if=virtio")
	if !strings.Contains(console, "HOLDFAST-BOOT: 2") {
		t.Errorf("second boot does not see the first one's writes:\n%s", console)
	}
	sh(t, "nbdcopy", rec2.Disks[0].NBDURL, seen)

	// Migration: point + writes, what the VM saw.
	prod := filepath.Join(e.dir, "production.img")
	out := e.ok("instant-recovery", "migrate", rec2.ID, "--to", prod)
	if !strings.Contains(out, "session ended") {
		t.Fatalf("migrate: %s", out)
	}
	sameFile(t, prod, seen)
	if boots := tinyguest.ReadDiskFile(t, prod, "boots"); boots != "boot 1\nboot 2\n" {
		t.Errorf("production image boots file %q", boots)
	}
	if _, err := os.Stat(rec.RedoDir); !os.IsNotExist(err) {
		t.Errorf("redo data left after migrate: %v", err)
	}
	if out := e.ok("instant-recovery", "list"); strings.Contains(out, rec2.ID) {
		t.Errorf("migrated session still listed:\n%s", out)
	}
}

// TestInstantRecoveryAllow: a client outside --allow is refused.
func TestInstantRecoveryAllow(t *testing.T) {
	needTools(t, "nbdinfo")
	e, _ := instantEnv(t, 8<<20, map[int64][]byte{0: randomBytes(1 << 20)})
	addr := freeAddr(t)
	rec := startInstant(t, e, "latest", "--nbd", addr, "--allow", "10.0.0.0/8")
	if out, err := exec.Command("nbdinfo", rec.Disks[0].NBDURL).CombinedOutput(); err == nil {
		t.Fatalf("a client outside --allow read the export:\n%s", out)
	}
	e.ok("instant-recovery", "stop", rec.ID, "--discard")

	// With --nbd-tls the exports take TLS only.
	tlsDir := filepath.Join(e.dir, "tls")
	writeTLSDir(t, tlsDir)
	rec = startInstant(t, e, "latest", "--nbd", freeAddr(t), "--nbd-tls", tlsDir)
	if !strings.HasPrefix(rec.Disks[0].NBDURL, "nbds://") {
		t.Fatalf("TLS export URL %q", rec.Disks[0].NBDURL)
	}
	plain := strings.Replace(rec.Disks[0].NBDURL, "nbds://", "nbd://", 1)
	if out, err := exec.Command("nbdinfo", plain).CombinedOutput(); err == nil {
		t.Errorf("the TLS export answered without TLS:\n%s", out)
	}
	if out, err := exec.Command("nbdinfo", "--size", rec.Disks[0].NBDURL+"?tls-certificates="+tlsDir).CombinedOutput(); err != nil ||
		strings.TrimSpace(string(out)) != "8388608" {
		t.Errorf("nbdinfo over TLS: %v\n%s", err, out)
	}
	e.ok("instant-recovery", "stop", rec.ID, "--discard")
	if _, err := os.Stat(rec.RedoDir); !os.IsNotExist(err) {
		t.Errorf("--discard left %s: %v", rec.RedoDir, err)
	}
	if r := e.run("instant-recovery", "stop", "ir-00000000"); r.code == 0 || !strings.Contains(r.stderr, "no such") {
		t.Errorf("stop of an unknown session: exit %d %s", r.code, r.stderr)
	}
	_ = fmt.Sprint()
}

// port111Free reports whether this process may serve the portmapper on
// 127.0.0.1:111 (root, and nothing else there).
func port111Free() bool {
	if os.Geteuid() != 0 {
		return false
	}
	ln, err := net.Listen("tcp", "127.0.0.1:111")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestInstantRecoveryNFS: the same guest boots from the NFS export through
// QEMU's nfs:// driver (portmapper on 111, as vPower NFS); nfs-cp reads the
// disk equal to a restore; a restarted session keeps its export path.
func TestInstantRecoveryNFS(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	needTools(t, "qemu-system-x86_64", "nfs-cp", "nfs-ls")
	if !port111Free() {
		t.Skip("needs root and a free port 111 for the portmapper QEMU's nfs:// driver asks")
	}
	g := tinyguest.Build(t)
	e := newEnv(t)
	e.vars = append(e.vars, "HOLDFAST_STATE_DIR="+filepath.Join(e.dir, "state"))
	e.init("--chunk-size", "256KiB")
	disk := filepath.Join(e.dir, "vm-disk.img")
	tinyguest.MakeDisk(t, disk, 64<<20, "served-over-nfs")
	bj := e.backupJSON("tiny", disk)
	restored := filepath.Join(e.dir, "restored.img")
	e.ok("restore", bj.Point, "--disk", "0", "--to", restored)

	rec := startInstant(t, e, "latest", "--nbd", "", "--nfs", "--nfs-ports", "111,0,0")
	url := rec.Disks[0].NFSURL
	if !strings.HasPrefix(url, "nfs://127.0.0.1/holdfast/"+rec.ID+"/disk-0.img") {
		t.Fatalf("NFS URL %q", url)
	}
	copied := filepath.Join(e.dir, "copied.img")
	sh(t, "nfs-cp", url, copied)
	sameFile(t, copied, restored)
	if out := sh(t, "nfs-ls", "nfs://127.0.0.1/holdfast/"+rec.ID); !strings.Contains(out, "disk-0.vmdk") || !strings.Contains(out, "vm.json") {
		t.Errorf("nfs-ls:\n%s", out)
	}
	console, took := tinyguest.Boot(t, g, 2*time.Minute, "-drive", "file="+url+",format=raw,if=virtio")
	if !strings.Contains(console, "HOLDFAST-MARKER: served-over-nfs") {
		t.Fatalf("guest console lacks the marker:\n%s", console)
	}
	t.Logf("booted from the backup over NFS in %s", took.Round(time.Millisecond))
	// QEMU's NFS client (libnfs) ends without UMNT: for
	// instant.NFSActiveWindow after its last request the session still
	// counts it as a client.
	e.ok("instant-recovery", "stop", rec.ID, "--force")
	rec2 := startInstant(t, e, "latest", "--nbd", "", "--nfs", "--nfs-ports", "111,0,0", "--redo-dir", rec.RedoDir)
	if rec2.ID != rec.ID || rec2.Disks[0].NFSURL != url {
		t.Fatalf("restarted session %s at %s, want %s at %s", rec2.ID, rec2.Disks[0].NFSURL, rec.ID, url)
	}
	console, _ = tinyguest.Boot(t, g, 2*time.Minute, "-drive", "file="+url+",format=raw,if=virtio")
	if !strings.Contains(console, "HOLDFAST-BOOT: 2") {
		t.Errorf("second boot over NFS does not see the first one's writes:\n%s", console)
	}
}

// TestInstantRecoveryLiveMigrate: a VM started by the session (QEMU,
// paused, no guest OS) writes to its disk on the export; a live migration
// mirrors the disk onto a production image and pivots the running VM onto
// it; the image equals the point plus the VM's write, and the VM keeps
// running from it after the session ended.
func TestInstantRecoveryLiveMigrate(t *testing.T) {
	needTools(t, "qemu-system-x86_64", "qemu-img")
	data := randomBytes(2 << 20)
	e, img := instantEnv(t, 32<<20, map[int64][]byte{0: data, 20 << 20: data[:1<<20]}, "--chunk-size", "256KiB")
	rec := startInstant(t, e, "latest", "--nbd", freeAddr(t), "--start-qemu", "--qemu-memory", "128", "--qemu-arg=-S")
	if rec.QEMU == 0 || !instant.Alive(rec.QEMU) {
		t.Fatalf("no VM: %+v", rec)
	}
	t.Cleanup(func() { _ = syscall.Kill(rec.QEMU, syscall.SIGKILL) })

	// The VM writes 64 KiB at 1 MiB (through its virtio disk → the export → redo).
	want, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := qmp.Dial(ctx, instant.QMPSocket(rec.RedoDir))
	if err != nil {
		t.Fatal(err)
	}
	cmd := `qemu-io -d /machine/peripheral/vd0/virtio-backend "write -P 0xab 1048576 65536"`
	if out, err := c.HumanMonitorCommand(ctx, cmd); err != nil || out != "" {
		t.Fatalf("%s: %q %v", cmd, out, err)
	}
	c.Close()
	copy(want[1<<20:1<<20+65536], bytes.Repeat([]byte{0xab}, 65536))

	// An outside NBD client on the exports: the live migration is refused
	// before it starts; the VM's own connections do not count.
	prod := filepath.Join(e.dir, "production.img")
	q := connectQemuIO(t, rec.Disks[0].NBDURL)
	if r := e.run("instant-recovery", "migrate", rec.ID, "--to", prod); r.code != exitUsage ||
		!strings.Contains(r.stderr, "in use by 1 client(s): nbd 127.0.0.1:") {
		t.Fatalf("live migrate with an outside client: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(prod); !os.IsNotExist(err) || !instant.Alive(rec.QEMU) {
		t.Fatalf("the refused migration created %s (%v) or stopped the VM", prod, err)
	}
	q.close()
	waitFor(t, "the outside client's connection to end", func() bool {
		return strings.Contains(e.ok("instant-recovery", "show", rec.ID), "clients: none")
	})

	out := e.ok("instant-recovery", "migrate", rec.ID, "--to", prod)
	if !strings.Contains(out, "live") || !strings.Contains(out, "runs on") {
		t.Fatalf("migrate: %s", out)
	}
	got, err := os.ReadFile(prod)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("production image differs from point + the VM's write (%v)", err)
	}
	if !instant.Alive(rec.QEMU) {
		t.Fatal("the VM stopped with the session")
	}
	if _, err := os.Stat(filepath.Join(rec.RedoDir, "disk-0")); !os.IsNotExist(err) {
		t.Errorf("redo data left: %v", err)
	}
	// The running VM's QMP socket and logs were not deleted with the redo data.
	c, err = qmp.Dial(ctx, instant.QMPSocket(rec.RedoDir))
	if err != nil {
		t.Fatalf("the migrated VM's QMP socket: %v", err)
	}
	c.Close()
	for _, f := range []string{"console.log", "qemu.log"} {
		if _, err := os.Stat(filepath.Join(rec.RedoDir, f)); err != nil {
			t.Errorf("the migrated VM's %s: %v", f, err)
		}
	}
	// The session stays listed while its VM runs; stop --discard keeps the
	// VM's files then, and removes them once the VM ended.
	if out := e.ok("instant-recovery", "list"); !strings.Contains(out, "vm-running") {
		t.Errorf("list after the live migration:\n%s", out)
	}
	e.ok("instant-recovery", "stop", rec.ID, "--discard")
	if _, err := os.Stat(instant.QMPSocket(rec.RedoDir)); err != nil {
		t.Errorf("stop --discard deleted the running VM's QMP socket: %v", err)
	}
	discardAfterVM(t, e, rec)
}

// TestInstantRecoveryDiscardOwnData: --redo-dir names a directory holding
// other files; the session's redo data go to a subdirectory Holdfast
// creates, and stop --discard deletes only that. A session directory
// without Holdfast's marker is left alone.
func TestInstantRecoveryDiscardOwnData(t *testing.T) {
	e, _ := instantEnv(t, 8<<20, map[int64][]byte{0: randomBytes(1 << 20)})
	storage := filepath.Join(e.dir, "vm-storage")
	user := map[string]string{"keep.txt": "the user's", "other/notes.txt": "also the user's"}
	for name, data := range user {
		p := filepath.Join(storage, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rec := startInstant(t, e, "latest", "--nbd", freeAddr(t), "--redo-dir", storage)
	if filepath.Dir(rec.RedoDir) != storage {
		t.Fatalf("redo directory %s, want a subdirectory of %s", rec.RedoDir, storage)
	}
	out := e.ok("instant-recovery", "stop", rec.ID, "--discard")
	if !strings.Contains(out, "redo data discarded") {
		t.Errorf("stop --discard: %s", out)
	}
	for name, data := range user {
		if b, err := os.ReadFile(filepath.Join(storage, name)); err != nil || string(b) != data {
			t.Errorf("stop --discard deleted or changed %s: %q %v", name, b, err)
		}
	}
	if _, err := os.Stat(rec.RedoDir); !os.IsNotExist(err) {
		t.Errorf("the session's redo directory is left: %v", err)
	}

	// A session directory that lost its marker is not Holdfast's to delete.
	rec = startInstant(t, e, "latest", "--nbd", freeAddr(t), "--redo-dir", storage)
	e.ok("instant-recovery", "stop", rec.ID)
	if err := os.Remove(filepath.Join(rec.RedoDir, instant.RedoMarker)); err != nil {
		t.Fatal(err)
	}
	r := e.run("instant-recovery", "stop", rec.ID, "--discard")
	if r.code == 0 || !strings.Contains(r.stderr, "not a redo directory Holdfast created") {
		t.Errorf("discard without the marker: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(rec.RedoDir, "disk-0", "redo.img")); err != nil {
		t.Errorf("the unmarked directory was emptied: %v", err)
	}
}
