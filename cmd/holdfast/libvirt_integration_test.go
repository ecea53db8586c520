package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/testutil/libvirtd"
)

// testDomain is a running libvirt domain and what its disk holds.
type testDomain struct {
	t        *testing.T
	d        *libvirtd.Daemon
	m        *libvirtd.Domain
	src      []string // the backup arguments naming it
	tmp      string   // TMPDIR of holdfast: the run directories go there
	expected []byte
}

func startDomain(t *testing.T, e *env, name string) *testDomain {
	t.Helper()
	d := libvirtd.Start(t)
	ro := filepath.Join(t.TempDir(), "ro.img")
	if err := os.WriteFile(ro, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	m := d.StartDomain(t, name, 64,
		"<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/><readonly/></disk>",
		"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='"+ro+"'/><target dev='vdb' bus='virtio'/><readonly/></disk>")
	td := &testDomain{t: t, d: d, m: m, src: []string{"--libvirt-uri", d.URI, "libvirt:///" + name},
		tmp: filepath.Join(e.dir, "tmp"), expected: make([]byte, 64<<20)}
	if err := os.Mkdir(td.tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "TMPDIR="+td.tmp)
	td.write(0, 4<<20, 0x11)
	td.write(30<<20, 1<<20, 0x22)
	return td
}

func (td *testDomain) write(off, n int, b byte) {
	td.t.Helper()
	td.m.Write(td.t, b, int64(off), int64(n))
	copy(td.expected[off:off+n], bytes.Repeat([]byte{b}, n))
}

func (td *testDomain) checkpoints() []string {
	td.t.Helper()
	out, err := td.d.Virsh(context.Background(), "checkpoint-list", td.m.Name, "--name")
	if err != nil {
		td.t.Fatal(err)
	}
	names := strings.Fields(out)
	slices.Sort(names)
	return names
}

// assertClean checks that libvirt runs no job (a shut-off domain has none), the run directory holds no
// scratch file or socket, and the domain's checkpoints are exactly want.
func (td *testDomain) assertClean(want ...string) {
	td.t.Helper()
	out, err := td.d.Virsh(context.Background(), "domjobinfo", td.m.Name)
	if off := err != nil && strings.Contains(out, "domain is not running"); !off && (err != nil || !strings.Contains(out, "None")) {
		td.t.Fatalf("a job is left: %s %v", out, err)
	}
	if ents, err := os.ReadDir(td.tmp); err != nil || len(ents) != 0 {
		td.t.Fatalf("left in the run directory: %v %v", ents, err)
	}
	slices.Sort(want)
	if got := td.checkpoints(); !slices.Equal(got, want) {
		td.t.Fatalf("checkpoints %v, want %v", got, want)
	}
}

// TestLibvirtSourceIncremental: full, then an incremental through
// Holdfast's checkpoint that reads only the written chunks, then a lost
// checkpoint that falls back to a full read, then the shut-off domain read
// from its file; every point restores to the disk at its time, and another
// tool's checkpoint stays.
func TestLibvirtSourceIncremental(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	td := startDomain(t, e, "hf-lv1")

	b1 := e.backupJSON("vml", td.src...)
	d := b1.Disks[0]
	if d.Transport != "hotadd" || d.Format != "qcow2" || d.Size != 64<<20 || d.BytesRead != 5<<20 ||
		!strings.Contains(d.CBT, "no previous") || !strings.HasPrefix(d.ChangeID, "holdfast-") {
		t.Fatalf("first backup: %+v %v", d, b1.Notes)
	}
	td.assertClean(d.ChangeID)
	want1 := bytes.Clone(td.expected)
	r, err := repo.Open(context.Background(), storage.NewLocal(e.repo), []byte("correct horse"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.ResolvePoint(context.Background(), b1.Point)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config; c != nil {
		slices.Sort(c.Skipped)
	}
	if c := m.Config; c == nil || c.Platform != "libvirt" || c.Name != "hf-lv1" || c.MemoryMiB != 64 || c.CPUs != 1 ||
		!strings.Contains(c.DomainXML, "<name>hf-lv1</name>") || len(c.Disks) != 1 || c.Disks[0].CapacityBytes != 64<<20 ||
		!slices.Equal(c.Skipped, []string{"hdc: CD-ROM", "vdb: read-only"}) {
		t.Fatalf("manifest config: %+v", c)
	}

	td.write(16<<20, 128<<10, 0xcc)
	td.write(40<<20+100, 300<<10, 0xdd) // crosses into a second chunk
	b2 := e.backupJSON("vml", td.src...)
	d = b2.Disks[0]
	if d.CBT != "used" || d.BytesRead != 3*256<<10 || d.ChangeBase != b1.Disks[0].ChangeID {
		t.Fatalf("incremental: cbt %q read %d base %q, want 3 chunks since %q (%v)", d.CBT, d.BytesRead, d.ChangeBase, b1.Disks[0].ChangeID, d.Warnings)
	}
	td.assertClean(d.ChangeID)
	want2 := bytes.Clone(td.expected)

	// Another tool's checkpoint stays; Holdfast's, removed by hand, makes
	// the next backup fall back to a full read with a warning.
	ctx := context.Background()
	if _, err := td.d.Virsh(ctx, "checkpoint-create-as", td.m.Name, "other-tool"); err != nil {
		t.Fatal(err)
	}
	if _, err := td.d.Virsh(ctx, "checkpoint-delete", td.m.Name, d.ChangeID); err != nil {
		t.Fatal(err)
	}
	td.write(2<<20, 4096, 0xee)
	b3 := e.backupJSON("vml", td.src...)
	d = b3.Disks[0]
	if !strings.Contains(d.CBT, "gone") || len(d.Warnings) == 0 || d.BytesRead != 5<<20+768<<10 {
		t.Fatalf("lost checkpoint: cbt %q warnings %v read %d", d.CBT, d.Warnings, d.BytesRead)
	}
	td.assertClean(d.ChangeID, "other-tool")
	want3 := bytes.Clone(td.expected)

	// Shut off: the disk file is read whole with the XML's format.
	if _, err := td.d.Virsh(ctx, "destroy", td.m.Name); err != nil {
		t.Fatal(err)
	}
	b4 := e.backupJSON("vml", td.src...)
	if d4 := b4.Disks[0]; d4.Transport != "direct" || d4.Format != "qcow2" || !strings.Contains(d4.CBT, "shut off") || d4.BytesRead != 5<<20+768<<10 {
		t.Fatalf("shut-off backup: %+v", d4)
	}
	td.assertClean(d.ChangeID, "other-tool")

	e.restoreEquals(b1.Point, want1)
	e.restoreEquals(b2.Point, want2)
	e.restoreEquals(b3.Point, want3)
	e.restoreEquals(b4.Point, want3)
	e.ok("verify", "--read-data")
}

// TestLibvirtSourceInterrupted: Ctrl-C during the read ends the job and
// removes the new checkpoint, merging its changes back; the job of a
// killed run is ended by the next one. The next incremental still reads
// every change since the last committed point.
func TestLibvirtSourceInterrupted(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	td := startDomain(t, e, "hf-lv2")
	b1 := e.backupJSON("vml", td.src...)

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		td.write(8<<20, 8<<20, byte(sig)) // 32 s to read at the limit
		cmd := e.command(context.Background(), append([]string{"backup", "--name", "vml", "--read-limit", "256KiB"}, td.src...)...)
		chunks := countChunks(t, e.repo)
		done := startUntil(t, cmd, "a new chunk", func() bool { return countChunks(t, e.repo) > chunks })
		_ = cmd.Process.Signal(sig)
		<-done
		if sig == syscall.SIGINT {
			if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Fatalf("interrupted backup exit %d", code)
			}
			td.assertClean(b1.Disks[0].ChangeID)
		}
	}

	td.write(50<<20, 4096, 0x99) // a change after the failed run
	b := e.backupJSON("vml", td.src...)
	d := b.Disks[0]
	if !strings.Contains(b.Notes["cleaned_leftovers"], "backup job") {
		t.Errorf("the killed run's job was not reported: %v", b.Notes)
	}
	if d.CBT != "used" || d.BytesRead != 33*256<<10 {
		t.Fatalf("after the interrupted runs: cbt %q read %d (want the 33 chunks changed since the last point) %v", d.CBT, d.BytesRead, d.Warnings)
	}
	td.assertClean(d.ChangeID)
	e.restoreEquals(b.Point, td.expected)
}

// TestLibvirtSourceRefused: a libvirt domain is the only SOURCE, and what
// is not built yet says so.
func TestLibvirtSourceRefused(t *testing.T) {
	e := newEnv(t)
	e.init()
	tests := []struct {
		args []string
		code int
		in   string
	}{
		{[]string{"libvirt:///a", "/tmp/b.img"}, 2, "whole VM"},
		{[]string{"libvirt://host/a"}, 2, "libvirt:// is the local host"},
		{[]string{"--libvirt-uri", "qemu+ssh://root@127.0.0.1:1/system?known_hosts=" + filepath.Join(e.dir, "none"), "libvirt:///a"}, 1, "known_hosts"},
		{[]string{"--libvirt-uri", "qemu+ssh://root@127.0.0.1:1/system?no_verify=1", "libvirt:///a"}, 1, "always checks the host key"},
		{[]string{"--libvirt-uri", "qemu+unix:///system?socket=" + filepath.Join(e.dir, "none.sock"), "libvirt:///a"}, 1, "connect to libvirt"},
	}
	for _, tc := range tests {
		r := e.run(append([]string{"backup", "--name", "x"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.in) || strings.Contains(r.stderr, "root@") {
			t.Errorf("backup %v: exit %d %q, want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.in)
		}
	}
}
