package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// forgedQcow2Header is what a guest writes into sector 0 of its raw disk: a
// qcow2 header made by qemu-img naming backing as backing file.
func forgedQcow2Header(t *testing.T, dir, backing string) []byte {
	t.Helper()
	needTools(t, "qemu-img")
	h := filepath.Join(dir, "forged-header.qcow2")
	sh(t, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "raw", h, "64M")
	b, err := os.ReadFile(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// guestOverwrites overwrites the start of a disk image, as the guest does (dd
// conv=notrunc).
func guestOverwrites(t *testing.T, disk string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
}

// hostSecret writes a host file the guest must never get into a backup.
func hostSecret(t *testing.T, dir string) (path string, content []byte) {
	t.Helper()
	content = bytes.Repeat([]byte("HOST-SECRET-0123"), 1<<16)
	path = filepath.Join(dir, "secret.raw")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, content
}

// restoredHolds restores the VM's latest point and checks it holds exactly
// want's bytes (and none of the secret).
func (e *env) restoredHolds(vm, want string, secret []byte) {
	e.t.Helper()
	out := filepath.Join(e.dir, "restored-"+vm+".img")
	e.ok("restore", vm+":latest", "--to", out)
	sameFile(e.t, out, want)
	got, err := os.ReadFile(out)
	if err != nil {
		e.t.Fatal(err)
	}
	if bytes.Contains(got, secret[:64]) {
		e.t.Fatal("the restored disk holds the host file's bytes")
	}
}

// TestBackupGuestForgedHeader: the guest of a raw disk writes a qcow2 header
// (made by qemu-img) naming a host file as backing file, or a VMDK
// descriptor naming it as extent. `backup` never reads the host file: a
// detected format refuses to follow it, --format raw backs up the guest's
// bytes, and a disk the previous point read as raw is read as raw again.
func TestBackupGuestForgedHeader(t *testing.T) {
	e := newEnv(t)
	e.init()
	secret, secretBytes := hostSecret(t, e.dir)
	header := forgedQcow2Header(t, e.dir, secret)

	forged := filepath.Join(e.dir, "forged.img")
	writeImage(t, forged, 8<<20, map[int64][]byte{1 << 20: randomBytes(1 << 20)})
	guestOverwrites(t, forged, header)
	r := e.run("backup", "--name", "vm1", forged)
	if r.code != exitFailure || !strings.Contains(r.stderr, forged) || !strings.Contains(r.stderr, "backing file") {
		t.Fatalf("detected forged qcow2: exit %d, stderr %s", r.code, r.stderr)
	}
	r = e.run("backup", "--name", "vm1", "--format", "qcow2", forged)
	if r.code != exitFailure || !strings.Contains(r.stderr, "--follow-backing") {
		t.Fatalf("--format qcow2 without --follow-backing: exit %d, stderr %s", r.code, r.stderr)
	}
	r = e.run("backup", "--name", "vm1", "--follow-backing", forged)
	if r.code == exitOK || !strings.Contains(r.stderr, "qcow2") {
		t.Fatalf("--follow-backing without --format qcow2: exit %d, stderr %s", r.code, r.stderr)
	}
	if ps := e.points(); len(ps) != 0 {
		t.Fatalf("refused backups left points: %+v", ps)
	}
	if b := e.backupJSON("vm1", "--format", "raw", forged); b.Disks[0].Format != "raw" {
		t.Fatalf("--format raw: %+v", b.Disks[0])
	}
	e.restoredHolds("vm1", forged, secretBytes)

	// Backed up as raw first, then the guest forges the header: the next
	// backup, without --format, reads it as raw again.
	clean := filepath.Join(e.dir, "clean.img")
	writeImage(t, clean, 8<<20, map[int64][]byte{0: randomBytes(64 << 10), 3 << 20: randomBytes(1 << 20)})
	if b := e.backupJSON("vm2", clean); b.Disks[0].Format != "raw" {
		t.Fatalf("first backup: %+v", b.Disks[0])
	}
	guestOverwrites(t, clean, header)
	if b := e.backupJSON("vm2", clean); b.Disks[0].Format != "raw" {
		t.Fatalf("backup after the guest forged a header: %+v", b.Disks[0])
	}
	e.restoredHolds("vm2", clean, secretBytes)

	// A VMDK descriptor naming the host file (a small raw disk).
	small := filepath.Join(e.dir, "small.img")
	writeImage(t, small, 64<<10, nil)
	guestOverwrites(t, small, []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"+
		"createType=\"monolithicFlat\"\nRW 128 FLAT \""+secret+"\" 0\n"))
	r = e.run("backup", "--name", "vm3", small)
	if r.code != exitFailure || !strings.Contains(r.stderr, small) || !strings.Contains(r.stderr, "extent file") {
		t.Fatalf("detected forged VMDK descriptor: exit %d, stderr %s", r.code, r.stderr)
	}
	e.backupJSON("vm3", "--format", "raw", small)
	e.restoredHolds("vm3", small, secretBytes)
}

// TestBackupSourceNotADisk: a FIFO, a character device or a directory as
// SOURCE is refused at once (a FIFO used to block open() for ever, deaf to
// SIGINT and SIGTERM), also as the extent of a VMDK descriptor.
func TestBackupSourceNotADisk(t *testing.T) {
	e := newEnv(t)
	e.init()
	fifo := filepath.Join(e.dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	desc := filepath.Join(e.dir, "fifo.vmdk")
	if err := os.WriteFile(desc, []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"+
		"createType=\"monolithicFlat\"\nRW 128 FLAT \"fifo\" 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fifo", []string{fifo}, "named pipe"},
		{"fifo as raw", []string{"--format", "raw", fifo}, "named pipe"},
		{"fifo as vmdk extent", []string{"--format", "vmdk", desc}, "named pipe"},
		{"character device", []string{"/dev/zero"}, "character device"},
		{"directory", []string{e.dir}, "directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A hang is the bug: bound it well above any real run.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := e.command(ctx, append([]string{"backup", "--name", "vm1"}, tc.args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("backup of a %s hung", tc.name)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitFailure ||
				!strings.Contains(stderr.String(), tc.want) || !strings.Contains(stderr.String(), "not a regular file or block device") {
				t.Fatalf("exit %v, stderr %s; want exit %d saying %q", err, stderr.String(), exitFailure, tc.want)
			}
		})
	}
	if ps := e.points(); len(ps) != 0 {
		t.Fatalf("refused backups left points: %+v", ps)
	}
}

// TestHostileVMNames: a VM name that could not name a restore point
// (path separators, dot-dot, control characters, empty, too long) is a
// usage error in `backup --name` and in `job create/edit --vm`, before
// anything is read or sent (the server is unreachable here).
func TestHostileVMNames(t *testing.T) {
	e := newEnv(t)
	e.vars = append(e.vars, "HOLDFAST_SERVER=https://127.0.0.1:1", "HOLDFAST_TOKEN=x")
	img := filepath.Join(e.dir, "a.img")
	writeImage(t, img, 1<<20, nil)
	for _, name := range []string{"../../x", "a/b", "vm\nFAKE", "vm\x1b[2J", ".", "..", "-x", "a b", strings.Repeat("v", 129)} {
		for _, args := range [][]string{
			{"backup", "--name", name, img},
			{"job", "create", "j", "--repository", "r", "--vm", name + "=" + img},
			{"job", "edit", "j", "--vm", name + "=" + img},
		} {
			r := e.run(args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, "invalid VM name") {
				t.Errorf("%s %s %q: exit %d, stderr %s; want exit %d", args[0], args[1], name, r.code, r.stderr, exitUsage)
			}
		}
	}
}
