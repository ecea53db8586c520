package libvirtd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Domain is a running TCG domain of a Daemon.
type Domain struct {
	Name string
	// Disk is the qcow2 image of its virtio disk vda.
	Disk string
	d    *Daemon
}

// StartDomain defines and starts domain name with a fresh qcow2 virtio
// disk of sizeMiB (vda, alias virtio-disk0); extraDisks are added as they
// are (<disk> elements). The domain runs no guest OS.
func (d *Daemon) StartDomain(t testing.TB, name string, sizeMiB int, extraDisks ...string) *Domain {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, name+".qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", img, fmt.Sprintf("%dM", sizeMiB)).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	x := fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    %s
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>`, name, img, joinLines(extraDisks))
	xf := filepath.Join(dir, name+".xml")
	if err := os.WriteFile(xf, []byte(x), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Virsh(ctx, "define", xf); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Virsh(ctx, "start", name); err != nil {
		log, _ := os.ReadFile(filepath.Join(d.Dir, "log", "qemu", name+".log"))
		t.Fatalf("%v\n%s", err, log)
	}
	return &Domain{Name: name, Disk: img, d: d}
}

func joinLines(s []string) string {
	out := ""
	for _, l := range s {
		out += l + "\n"
	}
	return out
}

// Write makes the guest write length bytes of pattern at off on vda,
// through QEMU's monitor (qemu-io on the virtio backend).
func (m *Domain) Write(t testing.TB, pattern byte, off, length int64) {
	t.Helper()
	cmd := fmt.Sprintf(`qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x%02x %d %d"`, pattern, off, length)
	out, err := m.d.Virsh(context.Background(), "qemu-monitor-command", m.Name, "--hmp", cmd)
	if err != nil {
		t.Fatal(err)
	}
	if o := strings.TrimSpace(out); o != "" && !strings.Contains(o, "wrote") {
		t.Fatalf("qemu-io write: %s", o)
	}
}
