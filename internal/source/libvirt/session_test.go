package libvirt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/libvirtd"
)

func checkpointNames(t *testing.T, d *libvirtd.Daemon, dom string) []string {
	t.Helper()
	out, err := d.Virsh(context.Background(), "checkpoint-list", dom, "--name")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

func noJob(t *testing.T, d *libvirtd.Daemon, dom string) {
	t.Helper()
	out, err := d.Virsh(context.Background(), "domjobinfo", dom)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "None") {
		t.Fatalf("a job is left: %s", out)
	}
}

// TestSessionFullThenIncremental: a full backup creates Holdfast's
// checkpoint; after a guest write the next one reads only the written
// range, and leaves only its own checkpoint, another tool's untouched.
func TestSessionFullThenIncremental(t *testing.T) {
	d := libvirtd.Start(t)
	raw := filepath.Join(t.TempDir(), "data.raw")
	if err := os.WriteFile(raw, bytes.Repeat([]byte{0x5a}, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	// a writable raw disk beside the qcow2 one: libvirt cannot checkpoint it, it is read whole
	m := d.StartDomain(t, "hf-src", 64, "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='"+raw+"'/><target dev='vdb' bus='virtio'/></disk>")
	m.Write(t, 0xcc, 1<<20, 1<<20)
	ctx := context.Background()
	loc := Locator{Domain: m.Name, URI: d.URI}
	o := Options{Locator: loc, Tag: "t1", RunDir: t.TempDir()}

	s, err := Prepare(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Disks) != 2 || s.Base != "" || s.Config.DomainXML == "" || s.Config.Platform != "libvirt" {
		t.Fatalf("session: %d disks base %q config %+v", len(s.Disks), s.Base, s.Config)
	}
	ch, err := s.Disks[0].(source.ChangeTracker).Changed(ctx, "")
	if err != nil || ch.Known {
		t.Fatalf("first backup: changes %+v %v", ch, err)
	}
	buf := make([]byte, 4096)
	if _, err := s.Disks[0].ReadAt(buf, 1<<20); err != nil || !bytes.Equal(buf, bytes.Repeat([]byte{0xcc}, 4096)) {
		t.Fatalf("read %x… %v", buf[:8], err)
	}
	first := s.Checkpoint
	if err := s.Release(ctx, true); err != nil {
		t.Fatal(err)
	}
	noJob(t, d, m.Name)
	if got := checkpointNames(t, d, m.Name); len(got) != 1 || got[0] != first {
		t.Fatalf("checkpoints after first backup: %v, want [%s]", got, first)
	}
	// another tool's checkpoint, made after ours
	if _, err := d.Virsh(ctx, "checkpoint-create-as", m.Name, "other-tool", "--diskspec", "vdb,checkpoint=no"); err != nil {
		t.Fatal(err)
	}

	m.Write(t, 0xdd, 16<<20, 1<<20)
	o.PreviousChangeIDs = []string{first, ""}
	s, err = Prepare(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Base != first {
		t.Fatalf("base %q (%s), want %q", s.Base, s.BaseReason, first)
	}
	ch, err = s.Disks[0].(source.ChangeTracker).Changed(ctx, first)
	if err != nil || !ch.Known {
		t.Fatalf("incremental: changes %+v %v", ch, err)
	}
	raw1 := s.Disks[1].(source.ChangeTracker)
	if ch, err := raw1.Changed(ctx, ""); err != nil || ch.Known || !strings.Contains(ch.Reason, "raw disk") || raw1.ChangeID() != "" {
		t.Fatalf("raw disk: changes %+v %v, change id %q", ch, err, raw1.ChangeID())
	}
	if _, err := s.Disks[1].ReadAt(buf, 4096); err != nil || !bytes.Equal(buf, bytes.Repeat([]byte{0x5a}, 4096)) {
		t.Fatalf("raw disk read %x… %v", buf[:8], err)
	}
	if len(ch.Extents) != 1 || ch.Extents[0].Offset > 16<<20 || ch.Extents[0].End() < 17<<20 || ch.Extents[0].Length > 2<<20 {
		t.Fatalf("changed extents %+v, want about [16M,17M)", ch.Extents)
	}
	second := s.Checkpoint
	if err := s.Release(ctx, true); err != nil {
		t.Fatal(err)
	}
	noJob(t, d, m.Name)
	emptyDir(t, o.RunDir)
	got := checkpointNames(t, d, m.Name)
	if len(got) != 2 || !contains(got, second) || !contains(got, "other-tool") {
		t.Fatalf("checkpoints after second backup: %v, want %s and other-tool", got, second)
	}
}

// emptyDir fails when the run directory holds anything (a scratch file, a socket).
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Fatalf("run directory %s: %v %v", dir, ents, err)
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// TestSessionForeignJob: another tool's running backup job is an error,
// and Holdfast leaves it and the domain's checkpoints alone.
func TestSessionForeignJob(t *testing.T) {
	d := libvirtd.Start(t)
	m := d.StartDomain(t, "hf-foreign", 16)
	ctx := context.Background()
	dir := t.TempDir()
	bx := filepath.Join(dir, "b.xml")
	x := "<domainbackup mode='pull'><server transport='unix' socket='" + filepath.Join(dir, "other.sock") + "'/>" +
		"<disks><disk name='vda' backup='yes' type='file'><scratch file='" + filepath.Join(dir, "vda.scratch") + "'/></disk></disks></domainbackup>"
	if err := os.WriteFile(bx, []byte(x), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Virsh(ctx, "backup-begin", m.Name, bx); err != nil {
		t.Fatal(err)
	}
	_, err := Prepare(ctx, Options{Locator: Locator{Domain: m.Name, URI: d.URI}, RunDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "another backup job") {
		t.Fatalf("Prepare with another tool's job running: %v", err)
	}
	if out, err := d.Virsh(ctx, "domjobinfo", m.Name); err != nil || !strings.Contains(out, "Backup") {
		t.Fatalf("the other tool's job was touched: %s %v", out, err)
	}
	if got := checkpointNames(t, d, m.Name); len(got) != 0 {
		t.Fatalf("checkpoints %v", got)
	}
	if _, err := d.Virsh(ctx, "domjobabort", m.Name); err != nil {
		t.Fatal(err)
	}
}

// TestSessionShutOff: a shut-off domain is read from its disk files with
// the XML's format, no checkpoint made; a missing domain is an error.
func TestSessionShutOff(t *testing.T) {
	d := libvirtd.Start(t)
	m := d.StartDomain(t, "hf-off", 16)
	m.Write(t, 0xab, 3<<20, 64<<10)
	ctx := context.Background()
	if _, err := d.Virsh(ctx, "destroy", m.Name); err != nil {
		t.Fatal(err)
	}
	s, err := Prepare(ctx, Options{Locator: Locator{Domain: m.Name, URI: d.URI}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Disks) != 1 || s.Disks[0].Describe().Format != "qcow2" || s.Notes["transport"] != "direct" {
		t.Fatalf("shut-off session: %+v %v", s.Disks, s.Notes)
	}
	buf := make([]byte, 4096)
	if _, err := s.Disks[0].ReadAt(buf, 3<<20); err != nil || !bytes.Equal(buf, bytes.Repeat([]byte{0xab}, 4096)) {
		t.Fatalf("read %x… %v", buf[:8], err)
	}
	if ch, _ := s.Disks[0].(source.ChangeTracker).Changed(ctx, ""); ch.Known || !strings.Contains(ch.Reason, "shut off") {
		t.Fatalf("changes %+v", ch)
	}
	if err := s.Release(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := checkpointNames(t, d, m.Name); len(got) != 0 {
		t.Fatalf("checkpoints %v", got)
	}
	_, err = Prepare(ctx, Options{Locator: Locator{Domain: "no-such", URI: d.URI}})
	if err == nil || !strings.Contains(err.Error(), "no-such") {
		t.Fatalf("Prepare of a missing domain: %v", err)
	}
}
