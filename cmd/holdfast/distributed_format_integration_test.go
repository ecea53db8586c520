package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDistributedGuestForgedHeader: server jobs never read a host file a
// guest names in a forged image header. A disk detected as raw at its first
// backup is recorded in the job and read as raw after its guest writes a
// qcow2 header (made by qemu-img, naming a host file as backing file); a
// disk forged before its first backup is refused, naming it, until the job
// gives its format.
func TestDistributedGuestForgedHeader(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	needTools(t, "qemu-img")
	c := newCluster(t, "")
	dir := c.e.dir
	c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 2, "--restore-root", dir)
	c.waitAgents("repo1", "proxy1")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret, secretBytes := hostSecret(t, dir)
	header := forgedQcow2Header(t, dir, secret)

	clean := filepath.Join(dir, "clean.img")
	writeImage(t, clean, 8<<20, map[int64][]byte{0: randomBytes(64 << 10), 3 << 20: randomBytes(1 << 20)})
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", pw, "--vm", "vm1="+clean)
	checkJobResult(t, c.runJob("nightly"), 1, 1)
	if out := c.e.ok("job", "show", "nightly"); !strings.Contains(out, "Recorded formats:") || !strings.Contains(out, clean+"=raw") {
		t.Fatalf("job show after the first backup does not show the recorded format:\n%s", out)
	}
	guestOverwrites(t, clean, header)
	res := c.runJob("nightly")
	checkJobResult(t, res, 1, 1)
	c.restoredHolds(res.VMs[0].Point, clean, secretBytes)

	// Forged before the first backup: refused, naming the disk.
	forged := filepath.Join(dir, "forged.img")
	writeImage(t, forged, 8<<20, map[int64][]byte{1 << 20: randomBytes(1 << 20)})
	guestOverwrites(t, forged, header)
	small := filepath.Join(dir, "small.img")
	writeImage(t, small, 64<<10, nil)
	guestOverwrites(t, small, []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"+
		"createType=\"monolithicFlat\"\nRW 128 FLAT \""+secret+"\" 0\n"))
	c.e.ok("job", "create", "forged", "--repository", "repo1", "--password-file", pw, "--vm", "vm2="+forged, "--vm", "vm3="+small)
	res = c.runJobAny("forged")
	if res.Status == "success" || len(res.VMs) != 2 {
		t.Fatalf("forged images backed up: %+v", res)
	}
	for i, disk := range []string{forged, small} {
		vm := res.VMs[i]
		msgs := strings.Join(vm.Errors, "\n")
		for _, d := range vm.Disks {
			msgs += "\n" + d.Error
		}
		if vm.Point != "" || !strings.Contains(msgs, disk) || !strings.Contains(msgs, "format was detected") {
			t.Errorf("VM %s: point %q, errors %s; want a refusal naming %s", vm.Name, vm.Point, msgs, disk)
		}
	}
	if out := c.e.ok("job", "show", "forged"); strings.Contains(out, "Recorded formats:") {
		t.Errorf("a refused backup recorded a format:\n%s", out)
	}
	c.e.ok("job", "edit", "forged", "--format", "raw")
	res = c.runJob("forged")
	checkJobResult(t, res, 2, 1)
	c.restoredHolds(res.VMs[0].Point, forged, secretBytes)
	c.restoredHolds(res.VMs[1].Point, small, secretBytes)
}

// restoredHolds restores disk 0 of a point through the server and checks it
// holds exactly want's bytes (and none of the secret).
func (c *cluster) restoredHolds(point, want string, secret []byte) {
	c.t.Helper()
	out := filepath.Join(c.e.dir, "restored-"+point+".img")
	c.e.ok("restore", point, "--disk", "0", "--to", out)
	sameFile(c.t, out, want)
	got, err := os.ReadFile(out)
	if err != nil {
		c.t.Fatal(err)
	}
	if bytes.Contains(got, secret[:64]) {
		c.t.Fatalf("point %s holds the host file's bytes", point)
	}
}

// TestDistributedSelectedVMName: a VM selected from an image directory under
// a name no restore point can carry fails alone, saying why, before any of
// its disks is read; the other VMs of the job are backed up.
func TestDistributedSelectedVMName(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := newCluster(t, "")
	dir := c.e.dir
	c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 2, "--restore-root", dir)
	c.waitAgents("repo1", "proxy1")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	images := filepath.Join(dir, "images")
	if err := os.Mkdir(images, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"good.img", "bad name.img"} {
		writeImage(t, filepath.Join(images, f), 1<<20, map[int64][]byte{0: randomBytes(64 << 10)})
	}
	c.e.ok("source", "add", "images", "--type", "image", "--address", images)
	c.e.ok("job", "create", "sel", "--repository", "repo1", "--password-file", pw, "--vms-from", "images")
	res := c.runJobAny("sel")
	if len(res.VMs) != 2 {
		t.Fatalf("selected VMs: %+v", res)
	}
	for _, vm := range res.VMs {
		switch vm.Name {
		case "good":
			if vm.Status != "success" || vm.Point == "" {
				t.Errorf("VM good: %+v", vm)
			}
		case "bad name":
			if vm.Point != "" || !strings.Contains(strings.Join(vm.Errors, " "), "invalid VM name") {
				t.Errorf("VM %q: %+v", vm.Name, vm)
			}
			for _, d := range vm.Disks {
				if d.BytesRead != 0 {
					t.Errorf("VM %q: disk %d read before the name was refused", vm.Name, d.Disk)
				}
			}
		default:
			t.Errorf("unexpected VM %q", vm.Name)
		}
	}
}
