package file

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// guestImage makes a raw guest disk whose first sectors the guest
// overwrote with header, and a host file holding secret bytes.
func guestImage(t *testing.T, dir string, header []byte) (guest, secret string) {
	t.Helper()
	secret = filepath.Join(dir, "secret.raw")
	writeFile(t, secret, bytes.Repeat([]byte("HOST-SECRET!"), 1<<16))
	guest = filepath.Join(dir, "guest.img")
	img := bytes.Repeat([]byte{0x5a}, 4<<20)
	copy(img, header)
	writeFile(t, guest, img)
	return guest, secret
}

// qemuHeader returns the first bytes of a qcow2 image made by qemu-img
// with the given backing file: what a guest writes into its raw disk.
func qemuHeader(t *testing.T, dir, backing string) []byte {
	t.Helper()
	h := filepath.Join(dir, "h.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "raw", h, "4M")
	b, err := os.ReadFile(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProbedImageNeverReadsOtherFiles: a guest of a raw disk writes a qcow2
// header naming a host file as backing file, or a VMDK descriptor naming a
// host file as extent. Detecting the format must never read that file; a
// forced raw format reads the guest's bytes.
func TestProbedImageNeverReadsOtherFiles(t *testing.T) {
	requireQemu(t)
	tests := []struct {
		name      string
		header    func(t *testing.T, dir, secret string) []byte
		opts      Options
		wantInErr string
	}{
		{name: "qcow2 backing, detected", header: func(t *testing.T, dir, secret string) []byte {
			return qemuHeader(t, dir, secret)
		}, wantInErr: "format was detected"},
		{name: "qcow2 backing, relative name, detected", header: func(t *testing.T, dir, secret string) []byte {
			return qemuHeader(t, dir, filepath.Base(secret))
		}, wantInErr: "format was detected"},
		{name: "qcow2 backing, format given without --follow-backing", header: func(t *testing.T, dir, secret string) []byte {
			return qemuHeader(t, dir, secret)
		}, opts: Options{Format: FormatQcow2}, wantInErr: "--follow-backing"},
		{name: "vmdk descriptor extent, detected", header: func(t *testing.T, dir, secret string) []byte {
			return []byte(descriptorText("monolithicFlat", "RW 8 FLAT \""+secret+"\" 0\n"))
		}, wantInErr: "format was detected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			secret := filepath.Join(dir, "secret.raw")
			header := tt.header(t, dir, secret)
			guest, _ := guestImage(t, dir, header)
			if strings.HasPrefix(tt.name, "vmdk") {
				// A descriptor is detected only in a file of at most 1 MiB.
				if err := os.Truncate(guest, 64<<10); err != nil {
					t.Fatal(err)
				}
			}
			d, err := Open(context.Background(), guest, tt.opts)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded: the image was read with a host file")
			}
			if !errors.Is(err, ErrReference) || !strings.Contains(err.Error(), guest) || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("Open = %v; want ErrReference naming %s and saying %q", err, guest, tt.wantInErr)
			}
			// Given as raw, the disk reads as the guest's bytes.
			d = mustOpenWith(t, guest, Options{Format: FormatRaw})
			want, err := os.ReadFile(guest)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, d.Size())
			if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("raw read differs from the guest image (err %v)", err)
			}
		})
	}
}

// TestFollowBacking reads a real backing chain only when asked, and only
// with the format given.
func TestFollowBacking(t *testing.T) {
	requireQemu(t)
	dir := t.TempDir()
	base, top := filepath.Join(dir, "base.raw"), filepath.Join(dir, "top.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "raw", base, "4M")
	qemuIO(t, "raw", base, "write -P 0x33 0 1M")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", top)
	if _, err := Open(context.Background(), top, Options{FollowBacking: true}); err == nil || !strings.Contains(err.Error(), "qcow2") {
		t.Fatalf("FollowBacking without the format: %v, want an error", err)
	}
	d := mustOpenWith(t, top, Options{Format: FormatQcow2, FollowBacking: true})
	compareWithFile(t, d, toRaw(t, "qcow2", top))
}

// TestOpenRefusesNonDisks: a FIFO, a character device, a directory or a
// socket is refused without blocking, also as a VMDK extent or a backing
// file.
func TestOpenRefusesNonDisks(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	desc := filepath.Join(dir, "fifo.vmdk")
	writeFile(t, desc, []byte(descriptorText("monolithicFlat", "RW 8 FLAT \"fifo\" 0\n")))
	tests := []struct {
		name, path string
		opts       Options
		wantInErr  string
	}{
		{name: "fifo", path: fifo, wantInErr: "named pipe"},
		{name: "fifo forced raw", path: fifo, opts: Options{Format: FormatRaw}, wantInErr: "named pipe"},
		{name: "character device", path: "/dev/zero", wantInErr: "character device"},
		{name: "directory", path: dir, wantInErr: "directory"},
		{name: "socket", path: sock, wantInErr: "socket"},
		{name: "vmdk extent fifo", path: desc, opts: Options{Format: FormatVMDK}, wantInErr: "named pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(context.Background(), tt.path, tt.opts)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantInErr) || !strings.Contains(err.Error(), "not a regular file or block device") {
				t.Fatalf("Open = %v, want a refusal saying %q", err, tt.wantInErr)
			}
		})
	}
	t.Run("qcow2 backing fifo", func(t *testing.T) {
		requireQemu(t)
		top := filepath.Join(t.TempDir(), "top.qcow2")
		run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", fifo, "-F", "raw", top, "1M")
		_, err := Open(context.Background(), top, Options{Format: FormatQcow2, FollowBacking: true})
		if err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("Open = %v, want a refusal of the FIFO", err)
		}
	})
}
