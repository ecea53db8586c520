package qmp

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestAgentWithoutGuest connects to the agent port of a VM that runs no
// guest OS: nothing answers, and DialAgent must end with the ctx deadline
// rather than hang.
func TestAgentWithoutGuest(t *testing.T) {
	needTools(t, "qemu-system-x86_64", "qemu-img")
	dir := t.TempDir()
	qga := filepath.Join(dir, "qga.sock")
	p := startVM(t, dir, newDisk(t, dir, "d.qcow2"),
		"-chardev", "socket,path="+qga+",server=on,wait=off,id=qga0",
		"-device", "virtio-serial", "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0")
	dialProc(t, testContext(t, 10*time.Second), p) // QEMU is up

	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	a, err := DialAgent(ctx, qga)
	if err == nil {
		a.Close()
		t.Fatal("DialAgent succeeded without a guest agent")
	}
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("DialAgent after %v: %v", time.Since(start), err)
	}
	t.Logf("DialAgent without a guest: %v", err)
}
