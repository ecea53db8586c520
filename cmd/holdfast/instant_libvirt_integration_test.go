package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/testutil/libvirtd"
	"github.com/holdfast-backup/holdfast/internal/testutil/tinyguest"
)

// tinyDomainXML is a shut-off TCG domain booting the tiny guest from disk
// (raw, vda) with its serial console in a file. Without ACPI the guest's
// poweroff halts it: the domain stays running once the guest is done.
func tinyDomainXML(name string, g tinyguest.Guest, disk, console string) string {
	return fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0 quiet panic=-1</cmdline></os>
  <on_reboot>destroy</on_reboot>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/><target dev='vda' bus='virtio'/></disk>
    <serial type='file'><source path='%s'/><target port='0'/></serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>`, name, g.Kernel, g.Initrd, disk, console)
}

// domains lists the daemon's domains (all, or only the running ones).
func domains(t *testing.T, d *libvirtd.Daemon, all bool) []string {
	t.Helper()
	args := []string{"list", "--name"}
	if all {
		args = append(args, "--all")
	}
	out, err := d.Virsh(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Fields(out)
	slices.Sort(names)
	return names
}

// waitConsole waits (at most 3 minutes: TCG on a shared machine) until the
// console log holds the guest's end marker and returns it.
func waitConsole(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(tinyguest.Done)) || bytes.Contains(b, []byte(tinyguest.Failed)) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on the console after 3 minutes:\n%s", tinyguest.Done, b)
		}
		time.Sleep(50 * time.Millisecond) // polling a file the guest writes: no other signal
	}
}

// TestInstantRecoveryLibvirt: a libvirt domain running the tiny guest is
// backed up; instant-recovery start --libvirt defines a new domain from
// the recorded XML whose disk is the session's NBD export and starts it:
// the guest boots (marker on the serial log in the redo directory), its
// writes land in the redo data, not the repository. migrate --to DIR moves
// the running domain onto a local qcow2 (virDomainBlockCopy, pivot): it
// keeps running from the file, which holds what the guest saw plus a write
// made after the pivot. A session that is not migrated removes its domain
// when stopped, and only it.
func TestInstantRecoveryLibvirt(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	needTools(t, "qemu-img", "nbdcopy")
	d := libvirtd.Start(t)
	g := tinyguest.Build(t)
	e := newEnv(t)
	e.vars = append(e.vars, "HOLDFAST_STATE_DIR="+filepath.Join(e.dir, "state"))
	e.init("--chunk-size", "256KiB")
	ctx := context.Background()

	disk := filepath.Join(e.dir, "tiny.img")
	tinyguest.MakeDisk(t, disk, 64<<20, "booted-through-libvirt")
	xf := filepath.Join(e.dir, "tiny.xml")
	if err := os.WriteFile(xf, []byte(tinyDomainXML("tiny", g, disk, filepath.Join(e.dir, "tiny-console.log"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Virsh(ctx, "define", xf); err != nil {
		t.Fatal(err)
	}
	bj := e.backupJSON("tiny", "--libvirt-uri", d.URI, "libvirt:///tiny") // shut off: read from its file
	before := chunkFiles(t, e.repo)

	started := time.Now()
	rec := startInstant(t, e, bj.Point, "--nbd", freeAddr(t), "--libvirt", "--libvirt-uri", d.URI)
	lr := rec.Libvirt
	if lr == nil || lr.Domain != "tiny-"+rec.ID || !slices.Equal(lr.Targets, []string{"vda"}) || lr.UUID == "" {
		t.Fatalf("session: %+v %+v", rec, lr)
	}
	t.Cleanup(func() { _, _ = d.Virsh(context.Background(), "destroy", lr.Domain) })
	console := waitConsole(t, filepath.Join(rec.RedoDir, "console-0.log"))
	t.Logf("start --libvirt to the guest's end marker: %s", time.Since(started).Round(time.Millisecond))
	if !strings.Contains(console, tinyguest.Marker+"booted-through-libvirt") || !strings.Contains(console, "HOLDFAST-BOOT: 1") {
		t.Fatalf("guest console:\n%s", console)
	}
	if out, _ := d.Virsh(ctx, "domstate", lr.Domain); !strings.Contains(out, "running") {
		t.Fatalf("domain state after the boot: %s", out)
	}
	x, err := d.Virsh(ctx, "dumpxml", lr.Domain)
	if err != nil || !strings.Contains(x, "protocol='nbd' name='disk-0'") || strings.Contains(x, disk) ||
		strings.Contains(x, "tiny-console.log") {
		t.Fatalf("the domain does not run on the export (or names the original's files):\n%s", x)
	}
	if out := e.ok("instant-recovery", "list"); !strings.Contains(out, "serving  libvirt") {
		t.Fatalf("list:\n%s", out)
	}
	if out := e.ok("instant-recovery", "show", rec.ID); !strings.Contains(out, "libvirt: domain "+lr.Domain+" ("+lr.UUID+")") {
		t.Fatalf("show:\n%s", out)
	}
	// The guest's writes are in the redo data; the repository is as it was.
	if boots := exportFile(t, e, rec, "boots"); boots != "boot 1\n" {
		t.Fatalf("boots file on the export: %q", boots)
	}
	if after := chunkFiles(t, e.repo); !slices.Equal(after, before) {
		t.Fatal("the chunk set changed while the domain ran from the backup")
	}
	if st, err := os.Stat(filepath.Join(rec.RedoDir, "disk-0", "redo.img")); err != nil || st.Size() != 64<<20 ||
		st.Sys().(*syscall.Stat_t).Blocks == 0 {
		t.Fatalf("redo file: %v %v", st, err)
	}
	seen := filepath.Join(e.dir, "seen.img")
	sh(t, "nbdcopy", rec.Disks[0].NBDURL, seen)
	waitFor(t, "the copy's connection to end", func() bool {
		return strings.Contains(e.ok("instant-recovery", "show", rec.ID), "clients: none")
	})

	// A second, unmigrated session: its stop removes its domain only.
	rec2 := startInstant(t, e, bj.Point, "--nbd", freeAddr(t), "--libvirt", "--libvirt-uri", d.URI, "--name", "tiny-second")
	if got := domains(t, d, true); !slices.Contains(got, "tiny-second") {
		t.Fatalf("domains %v", got)
	}
	if out := e.ok("instant-recovery", "stop", rec2.ID); !strings.Contains(out, "stopped") {
		t.Fatalf("stop: %s", out)
	}
	if got, want := domains(t, d, true), []string{"tiny", lr.Domain}; !slices.Equal(got, want) {
		t.Fatalf("after stopping the second session: domains %v, want %v", got, want)
	}
	var shown instantRow
	if err := json.Unmarshal([]byte(e.ok("instant-recovery", "show", rec2.ID, "--json")), &shown); err != nil ||
		shown.Libvirt == nil || !shown.Libvirt.Removed || shown.Runs != "libvirt" {
		t.Fatalf("stopped session: %+v %v", shown, err)
	}

	// A session whose serving process was killed left its domain: stop
	// removes it.
	rec3 := startInstant(t, e, bj.Point, "--nbd", freeAddr(t), "--libvirt", "--libvirt-uri", d.URI, "--name", "tiny-third")
	if err := syscall.Kill(rec3.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the serving process to end", func() bool { return !instant.Alive(rec3.PID) })
	if out := e.ok("instant-recovery", "stop", rec3.ID); !strings.Contains(out, "libvirt domain tiny-third destroyed and undefined") {
		t.Fatalf("stop of the killed session: %s", out)
	}
	if got, want := domains(t, d, true), []string{"tiny", lr.Domain}; !slices.Equal(got, want) {
		t.Fatalf("after stopping the killed session: domains %v, want %v", got, want)
	}

	// A migration that cannot create its image changes nothing.
	if r := e.run("instant-recovery", "migrate", rec.ID, "--to", filepath.Join(e.dir, "missing", "x.qcow2")); r.code == 0 {
		t.Fatalf("migrate to a missing directory: %s", r.stdout)
	}
	if x, _ := d.Virsh(ctx, "dumpxml", lr.Domain); !strings.Contains(x, "protocol='nbd' name='disk-0'") {
		t.Fatalf("the failed migration moved the domain:\n%s", x)
	}
	if out := e.ok("instant-recovery", "list"); !strings.Contains(out, "serving  libvirt") {
		t.Fatalf("list after the failed migration:\n%s", out)
	}

	// Live migration onto a local qcow2 in DIR.
	prodDir := filepath.Join(e.dir, "prod")
	if err := os.Mkdir(prodDir, 0o700); err != nil {
		t.Fatal(err)
	}
	out := e.ok("instant-recovery", "migrate", rec.ID, "--to", prodDir)
	t.Logf("%s", out)
	prod := filepath.Join(prodDir, lr.Domain+"-vda.qcow2")
	if !strings.Contains(out, "live") || !strings.Contains(out, prod) {
		t.Fatalf("migrate: %s", out)
	}
	if out, _ := d.Virsh(ctx, "domstate", lr.Domain); !strings.Contains(out, "running") {
		t.Fatalf("domain state after the migration: %s", out)
	}
	for _, flags := range [][]string{nil, {"--inactive"}} {
		x, err := d.Virsh(ctx, append([]string{"dumpxml", lr.Domain}, flags...)...)
		if err != nil || !strings.Contains(x, "<source file='"+prod+"'") || strings.Contains(x, "nbd") {
			t.Fatalf("dumpxml %v after the migration:\n%s", flags, x)
		}
	}
	if got, want := domains(t, d, true), []string{"tiny", lr.Domain}; !slices.Equal(got, want) {
		t.Fatalf("after the migration: domains %v, want %v", got, want)
	}
	if out := e.ok("instant-recovery", "list"); strings.Contains(out, rec.ID) {
		t.Errorf("migrated session still listed:\n%s", out)
	}
	// The domain writes to its file now (the exports are gone).
	writeThrough(t, d, lr.Domain, 0xab, 60<<20, 64<<10)
	want, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	copy(want[60<<20:], bytes.Repeat([]byte{0xab}, 64<<10))
	if err := os.WriteFile(seen, want, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Virsh(ctx, "destroy", "--graceful", lr.Domain); err != nil { // QEMU flushes and ends
		t.Fatal(err)
	}
	sh(t, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", prod, seen)
	if got := domains(t, d, true); !slices.Equal(got, []string{"tiny", lr.Domain}) {
		t.Errorf("domains at the end %v", got)
	}
}

// writeThrough makes the domain's guest write length bytes of pattern at
// off on vda, through QEMU's monitor.
func writeThrough(t *testing.T, d *libvirtd.Daemon, dom string, pattern byte, off, length int64) {
	t.Helper()
	cmd := fmt.Sprintf(`qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x%02x %d %d"`, pattern, off, length)
	out, err := d.Virsh(context.Background(), "qemu-monitor-command", dom, "--hmp", cmd)
	if err != nil || strings.Contains(out, "rror") {
		t.Fatalf("%s: %s %v", cmd, out, err)
	}
}

// exportFile reads file name of the tiny guest's filesystem on the
// session's export (nbdcopy to a scratch image, then debugfs).
func exportFile(t *testing.T, e *env, rec instant.Record, name string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "export.img")
	sh(t, "nbdcopy", rec.Disks[0].NBDURL, img)
	return tinyguest.ReadDiskFile(t, img, name)
}

// TestInstantRecoveryLibvirtNoXML: a point without domain XML (a disk
// image backup) runs as the minimal domain, or from --libvirt-xml (the
// tiny guest boots from it); stop --discard removes the domain and the
// redo data. Conflicting flags are usage errors.
func TestInstantRecoveryLibvirtNoXML(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	d := libvirtd.Start(t)
	g := tinyguest.Build(t)
	e := newEnv(t)
	e.vars = append(e.vars, "HOLDFAST_STATE_DIR="+filepath.Join(e.dir, "state"))
	e.init("--chunk-size", "256KiB")
	ctx := context.Background()
	disk := filepath.Join(e.dir, "plain.img")
	tinyguest.MakeDisk(t, disk, 32<<20, "from-a-template")
	bj := e.backupJSON("plain", disk)

	for _, bad := range [][]string{{"--start-qemu"}, {"--nbd", ""}, {"--libvirt-uri", "qemu:///session"}, {"--libvirt-uri", "qemu+ssh://root@kvm1/system"}, {"--libvirt-xml", "/nonexistent.xml"}} {
		args := append([]string{"instant-recovery", "start", bj.Point, "--libvirt", "--libvirt-uri", d.URI}, bad...)
		if r := e.run(args...); r.code != exitUsage {
			t.Errorf("start --libvirt %v: exit %d: %s", bad, r.code, r.stderr)
		}
	}

	rec := startInstant(t, e, bj.Point, "--nbd", freeAddr(t), "--libvirt", "--libvirt-uri", d.URI, "--qemu-memory", "64")
	x, err := d.Virsh(ctx, "dumpxml", rec.Libvirt.Domain)
	if err != nil || !strings.Contains(x, "<memory unit='KiB'>65536</memory>") || !strings.Contains(x, "protocol='nbd' name='disk-0'") ||
		!strings.Contains(x, filepath.Join(rec.RedoDir, "console-0.log")) {
		t.Fatalf("minimal domain:\n%s", x)
	}
	if out, _ := d.Virsh(ctx, "domstate", rec.Libvirt.Domain); !strings.Contains(out, "running") {
		t.Fatalf("minimal domain state: %s", out)
	}
	e.ok("instant-recovery", "stop", rec.ID, "--discard")
	if got := domains(t, d, true); len(got) != 0 {
		t.Fatalf("domains left: %v", got)
	}

	tmpl := filepath.Join(e.dir, "template.xml")
	if err := os.WriteFile(tmpl, []byte(tinyDomainXML("template", g, "/nonexistent.img", "/nonexistent/console.log")), 0o600); err != nil {
		t.Fatal(err)
	}
	rec = startInstant(t, e, bj.Point, "--nbd", freeAddr(t), "--libvirt", "--libvirt-uri", d.URI, "--libvirt-xml", tmpl, "--name", "from-template")
	console := waitConsole(t, filepath.Join(rec.RedoDir, "console-0.log"))
	if !strings.Contains(console, tinyguest.Marker+"from-a-template") {
		t.Fatalf("guest console:\n%s", console)
	}
	e.ok("instant-recovery", "stop", rec.ID, "--discard")
	if got := domains(t, d, true); len(got) != 0 {
		t.Fatalf("domains left: %v", got)
	}
	if _, err := os.Stat(rec.RedoDir); !os.IsNotExist(err) {
		t.Errorf("redo directory left: %v", err)
	}
}
