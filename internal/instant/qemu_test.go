package instant

import (
	"strings"
	"testing"
)

func TestVMArgs(t *testing.T) {
	dir := t.TempDir()
	disks := []DiskInfo{{Index: 0, NBDURL: "nbd://[::1]:10809/disk-0"}, {Index: 1}}
	for _, c := range []struct {
		name    string
		rec     Record
		o       VMOptions
		wantErr string
		want    []string // in the arguments joined by spaces
	}{
		{name: "no NBD", rec: Record{RedoDir: dir}, wantErr: "needs the NBD exports"},
		{name: "TLS exports", rec: Record{RedoDir: dir, NBDAddr: "127.0.0.1:1", Disks: []DiskInfo{{NBDURL: "nbds://127.0.0.1:1/disk-0"}}},
			wantErr: "without TLS"},
		{name: "defaults, IPv6, no network", rec: Record{ID: "ir-1", VM: "vm", RedoDir: dir, NBDAddr: "[::1]:10809", Disks: disks},
			want: []string{"-accel tcg -m 1024 -smp 1", "server.host=::1,server.port=10809,export=disk-1", "-nic none"}},
		{name: "recorded NICs on the network", rec: Record{RedoDir: dir, NBDAddr: "127.0.0.1:1", Disks: disks},
			o:    VMOptions{Memory: 512, CPUs: 2, Network: true, NICs: []string{"e1000"}, Extra: []string{"-S"}},
			want: []string{"-m 512 -smp 2", "-nic user,model=e1000 -S"}},
		{name: "the session's own NBD socket", rec: Record{RedoDir: dir, NBDAddr: "127.0.0.1:1", Disks: disks},
			o:    VMOptions{nbdSocket: "/state/sessions/ir-1.nbd"},
			want: []string{"driver=nbd,server.type=unix,server.path=/state/sessions/ir-1.nbd,export=disk-1,node-name=ir-disk-1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.o
			args, err := vmArgs(c.rec, &o)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("vmArgs: %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || o.Binary != "qemu-system-x86_64" {
				t.Fatalf("vmArgs: %v (binary %q)", err, o.Binary)
			}
			joined := strings.Join(args, " ")
			for _, w := range c.want {
				if !strings.Contains(joined, w) {
					t.Errorf("arguments lack %q:\n%s", w, joined)
				}
			}
		})
	}
}
