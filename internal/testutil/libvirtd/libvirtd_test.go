package libvirtd

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

func TestStartDomain(t *testing.T) {
	d := Start(t)
	m := d.StartDomain(t, "hf-kit", 32)
	m.Write(t, 0xcc, 1<<20, 64<<10)
	out, err := d.Virsh(context.Background(), "domstate", m.Name)
	if err != nil || !strings.Contains(out, "running") {
		t.Fatalf("domstate: %q %v", out, err)
	}
}

func TestWriteReachesDisk(t *testing.T) {
	d := Start(t)
	m := d.StartDomain(t, "hf-kit2", 16)
	m.Write(t, 0xcc, 1<<20, 64<<10)
	if _, err := d.Virsh(context.Background(), "destroy", m.Name); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0xcc 1M 64k", m.Disk).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Pattern verification failed") {
		t.Fatalf("guest write not on disk: %v: %s", err, out)
	}
}
