package libvirt

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/testutil/libvirtd"
	"github.com/holdfast-backup/holdfast/internal/testutil/tinyguest"
)

// TestQuiesceGuestAgent: a domain running the tiny guest, whose /init
// answers the guest agent's freeze and thaw on org.qemu.guest_agent.0, is
// frozen for the start of the backup job and thawed right after.
func TestQuiesceGuestAgent(t *testing.T) {
	d := libvirtd.Start(t)
	g := tinyguest.Build(t)
	dir := t.TempDir()
	raw, img, console := filepath.Join(dir, "d.raw"), filepath.Join(dir, "d.qcow2"), filepath.Join(dir, "console.log")
	tinyguest.MakeDisk(t, raw, 64<<20, "quiesce")
	if out, err := exec.Command("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, img).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	x := fmt.Sprintf(`<domain type='qemu'>
  <name>hf-agent</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel><initrd>%s</initrd>
    <cmdline>console=ttyS0 quiet holdfast.agent</cmdline></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/><target dev='vda' bus='virtio'/></disk>
    <serial type='file'><source path='%s'/><target port='0'/></serial>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>`, g.Kernel, g.Initrd, img, console)
	xf := filepath.Join(dir, "dom.xml")
	if err := os.WriteFile(xf, []byte(x), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"define", xf}, {"start", "hf-agent"}} {
		if out, err := d.Virsh(ctx, args...); err != nil {
			t.Fatalf("virsh %v: %v %s", args, err, out)
		}
	}
	defer func() { _, _ = d.Virsh(context.Background(), "destroy", "hf-agent") }()
	waitConsole(t, console, tinyguest.Agent)
	// libvirt learns that the guest opened the port from an event: wait
	// until it passes a command through.
	for deadline := clock.Real().Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		out, err := d.Virsh(ctx, "qemu-agent-command", "hf-agent", `{"execute":"guest-ping"}`)
		if err == nil {
			break
		}
		if clock.Real().Now().After(deadline) {
			t.Fatalf("guest agent never reachable through libvirt: %v %s\nconsole:\n%s", err, out, readConsole(console))
		}
	}

	s, err := Prepare(ctx, Options{Locator: Locator{Domain: "hf-agent", URI: d.URI}, Tag: "q", RunDir: t.TempDir(), Quiesce: true})
	if err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, readConsole(console))
	}
	if s.Quiesced != "frozen through the guest agent (1 file systems)" || s.Notes["guest_quiesce"] != s.Quiesced {
		t.Fatalf("guest_quiesce %q (notes %v)\nconsole:\n%s", s.Quiesced, s.Notes, readConsole(console))
	}
	out := readConsole(console)
	f, th := strings.Index(out, tinyguest.Frozen), strings.Index(out, tinyguest.Thawed)
	if f < 0 || th < f {
		t.Fatalf("console does not show freeze then thaw:\n%s", out)
	}
	buf := make([]byte, 4096)
	if _, err := s.Disks[0].ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, true); err != nil {
		t.Fatal(err)
	}
	noJob(t, d, "hf-agent")
}

func readConsole(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// waitConsole waits until the guest's console shows marker (QEMU writes
// the serial port to the file as the guest prints).
func waitConsole(t *testing.T, path, marker string) {
	t.Helper()
	for deadline := clock.Real().Now().Add(3 * time.Minute); ; {
		out := readConsole(path)
		if strings.Contains(out, marker) {
			return
		}
		if strings.Contains(out, tinyguest.Failed) || clock.Real().Now().After(deadline) {
			t.Fatalf("guest console has no %s:\n%s", marker, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
