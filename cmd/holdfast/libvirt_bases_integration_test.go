package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/libvirtd"
)

// attachedDisk is a qcow2 disk attached to a running test domain, and what
// it holds.
type attachedDisk struct {
	td       *testDomain
	qdev     string // QEMU's device id
	expected []byte
}

// attachDisk hot-plugs a fresh qcow2 SCSI disk of sizeMiB as target dev
// (sda: unit 0 of the domain's virtio-scsi controller; the TCG "pc"
// machine without ACPI has no PCI hotplug) into the running domain, live
// and persistently (virsh attach-disk).
func (td *testDomain) attachDisk(dev string, sizeMiB int) *attachedDisk {
	td.t.Helper()
	img := filepath.Join(td.t.TempDir(), dev+".qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", img, fmt.Sprintf("%dM", sizeMiB)).CombinedOutput(); err != nil {
		td.t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	if _, err := td.d.Virsh(context.Background(), "attach-disk", td.m.Name, img, dev, "--driver", "qemu", "--subdriver", "qcow2",
		"--targetbus", "scsi", "--live", "--config"); err != nil {
		td.t.Fatal(err)
	}
	return &attachedDisk{td: td, qdev: "scsi0-0-0-" + fmt.Sprint(dev[len(dev)-1]-'a'), expected: make([]byte, sizeMiB<<20)}
}

// write makes the guest write n bytes of b at off on the disk, through the monitor.
func (a *attachedDisk) write(off, n int, b byte) {
	a.td.t.Helper()
	cmd := fmt.Sprintf(`qemu-io -d %s "write -P 0x%02x %d %d"`, a.qdev, b, off, n)
	out, err := a.td.d.Virsh(context.Background(), "qemu-monitor-command", a.td.m.Name, "--hmp", cmd)
	if err != nil || (strings.TrimSpace(out) != "" && !strings.Contains(out, "wrote")) {
		a.td.t.Fatalf("qemu-io write on %s: %s %v", a.qdev, out, err)
	}
	copy(a.expected[off:off+n], bytes.Repeat([]byte{b}, n))
}

// restoreDiskEquals restores disk i of a point and compares it with want.
func (e *env) restoreDiskEquals(point string, i int, want []byte) {
	e.t.Helper()
	out := filepath.Join(e.dir, fmt.Sprintf("restored-%s-%d.img", point, i))
	e.ok("restore", point, "--disk", fmt.Sprint(i), "--to", out, "--force")
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		e.t.Fatalf("restore of %s disk %d differs from the disk at backup time", point, i)
	}
}

// TestLibvirtSourceAddedDisk: a disk attached after the last point is
// read whole while the disk the previous checkpoint covers stays
// incremental; the new checkpoint covers both, so the next backup reads
// only the changed chunks of each; every point restores identical.
func TestLibvirtSourceAddedDisk(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	d := libvirtd.Start(t)
	m := d.StartDomain(t, "hf-lv5", 64, "<controller type='scsi' index='0' model='virtio-scsi'/>")
	td := &testDomain{t: t, d: d, m: m, src: []string{"--libvirt-uri", d.URI, "libvirt:///" + m.Name},
		tmp: filepath.Join(e.dir, "tmp"), expected: make([]byte, 64<<20)}
	if err := os.Mkdir(td.tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "TMPDIR="+td.tmp)
	td.write(0, 4<<20, 0x11)
	b1 := e.backupJSON("vma", td.src...)
	if len(b1.Disks) != 1 {
		t.Fatalf("first backup: %d disks", len(b1.Disks))
	}
	want1 := bytes.Clone(td.expected)

	sda := td.attachDisk("sda", 32)
	td.write(16<<20, 128<<10, 0xcc)
	sda.write(0, 2<<20, 0x33)
	sda.write(10<<20, 256<<10, 0x44)
	b2 := e.backupJSON("vma", td.src...)
	if len(b2.Disks) != 2 {
		t.Fatalf("after attaching sda: %d disks", len(b2.Disks))
	}
	d0, d1 := b2.Disks[0], b2.Disks[1]
	if d0.CBT != "used" || d0.BytesRead != 256<<10 || d0.ChangeBase != b1.Disks[0].ChangeID {
		t.Fatalf("vda: cbt %q read %d base %q, want the 1 written chunk since %q (%v)", d0.CBT, d0.BytesRead, d0.ChangeBase, b1.Disks[0].ChangeID, d0.Warnings)
	}
	if !strings.Contains(d1.CBT, "no previous restore point of this disk") || d1.BytesRead != 2<<20+256<<10 || d1.ChangeID != d0.ChangeID {
		t.Fatalf("sda: cbt %q read %d change id %q (vda's %q)", d1.CBT, d1.BytesRead, d1.ChangeID, d0.ChangeID)
	}
	td.assertClean(d0.ChangeID)
	want2, want2b := bytes.Clone(td.expected), bytes.Clone(sda.expected)

	td.write(40<<20, 4096, 0xdd)
	sda.write(20<<20, 256<<10, 0x55)
	b3 := e.backupJSON("vma", td.src...)
	for i, dm := range b3.Disks {
		if dm.CBT != "used" || dm.BytesRead != 256<<10 || dm.ChangeBase != d0.ChangeID {
			t.Fatalf("disk %d after both were checkpointed: cbt %q read %d base %q (%v)", i, dm.CBT, dm.BytesRead, dm.ChangeBase, dm.Warnings)
		}
	}
	td.assertClean(b3.Disks[0].ChangeID)

	e.restoreEquals(b1.Point, want1)
	e.restoreEquals(b2.Point, want2)
	e.restoreDiskEquals(b2.Point, 1, want2b)
	e.restoreEquals(b3.Point, td.expected)
	e.restoreDiskEquals(b3.Point, 1, sda.expected)
}

// TestLibvirtSourceRepositoryFails: a backup whose repository stops taking
// chunks mid-read (its chunks directory made immutable, chattr +i) exits
// non-zero with the storage error and leaves no job, no scratch file and
// only the previous checkpoint (the new one deleted, its changes merged
// back); once the repository is writable again the next incremental reads
// every change since the last committed point.
func TestLibvirtSourceRepositoryFails(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr (e2fsprogs) not installed")
	}
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	td := startDomain(t, e, "hf-lv6")
	b1 := e.backupJSON("vmf", td.src...)
	chunksDir := filepath.Join(e.repo, "chunks")
	chattr := func(flag string) {
		t.Helper()
		if out, err := exec.Command("chattr", "-R", flag, chunksDir).CombinedOutput(); err != nil {
			t.Fatalf("chattr -R %s: %v: %s", flag, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-R", "-i", chunksDir).Run() })

	td.write(8<<20, 8<<20, 0x66) // 32 s to read at the limit
	cmd := e.command(context.Background(), append([]string{"backup", "--name", "vmf", "--read-limit", "256KiB"}, td.src...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	chunks := countChunks(t, e.repo)
	done := startUntil(t, cmd, "a new chunk", func() bool { return countChunks(t, e.repo) > chunks })
	chattr("+i")
	<-done
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "operation not permitted") {
		t.Fatalf("backup into an unwritable repository: exit %d, stderr %q", code, stderr.String())
	}
	t.Logf("the failed backup said: %s", stderr.String())
	td.assertClean(b1.Disks[0].ChangeID)
	if ps := e.points(); len(ps) != 1 {
		t.Fatalf("points after the failed backup: %d, want 1", len(ps))
	}

	chattr("-i")
	td.write(50<<20, 4096, 0x99) // a change after the failed run
	b := e.backupJSON("vmf", td.src...)
	d := b.Disks[0]
	if d.CBT != "used" || d.BytesRead != 33*256<<10 || d.ChangeBase != b1.Disks[0].ChangeID {
		t.Fatalf("after the failed run: cbt %q read %d base %q (want the 33 chunks changed since %s) %v", d.CBT, d.BytesRead, d.ChangeBase, b1.Disks[0].ChangeID, d.Warnings)
	}
	td.assertClean(d.ChangeID)
	e.restoreEquals(b.Point, td.expected)
}
