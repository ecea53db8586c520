package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/holdfast-backup/holdfast/internal/testutil/sshdtest"
)

// TestLibvirtSourceSSH: a domain backed up through qemu+ssh (a real sshd
// in front of a private libvirtd): the libvirt RPC and the NBD exports both
// go through the SSH connection, the run directory is made and removed on
// the "remote" host; full then incremental, both restore identical. A host
// key known_hosts does not list, or lists otherwise, is refused. --quiesce
// without a guest agent warns and backs up crash-consistent.
func TestLibvirtSourceSSH(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	td := startDomain(t, e, "hf-ssh1")
	srv := sshdtest.Start(t, "LogLevel DEBUG1") // logs the stream-local channels
	keys := t.TempDir()
	keyFile, kh := filepath.Join(keys, "id"), filepath.Join(keys, "known_hosts")
	writeKeyFile(t, keyFile, srv.ClientKey)
	writeKeyFile(t, kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, srv.HostPub)+"\n"))
	e.vars = append(e.vars, "SSH_AUTH_SOCK=", "HOME="+t.TempDir())
	uri := "qemu+ssh://root@" + srv.Addr + "/system?socket=" + td.d.Socket + "&keyfile=" + keyFile + "&known_hosts=" + kh
	src := []string{"--libvirt-uri", uri, "--libvirt-scratch-dir", td.tmp, "libvirt:///" + td.m.Name}

	b1 := e.backupJSON("vms", append([]string{"--quiesce"}, src...)...)
	d := b1.Disks[0]
	if d.Transport != "hotadd" || d.BytesRead != 5<<20 || !strings.HasPrefix(d.ChangeID, "holdfast-") ||
		!strings.Contains(b1.Notes["transport_choice"], "through the SSH connection") {
		t.Fatalf("full backup over ssh: %+v %v", d, b1.Notes)
	}
	if q := b1.Notes["guest_quiesce"]; !strings.HasPrefix(q, "crash-consistent: the guest agent could not freeze") {
		t.Fatalf("quiesce without a guest agent: %q", q)
	}
	td.assertClean(d.ChangeID)
	// The libvirt RPC and the NBD export both came through sshd's
	// direct-streamlocal channels.
	log := srv.Log()
	if !strings.Contains(log, "Accepted publickey for root") ||
		!strings.Contains(log, "target "+td.d.Socket) || !strings.Contains(log, "target "+td.tmp+"/holdfast-libvirt-") {
		t.Fatalf("sshd did not log the login and the streamlocal channels:\n%s", log)
	}
	want1 := append([]byte(nil), td.expected...)

	td.write(16<<20, 128<<10, 0xcc)
	b2 := e.backupJSON("vms", src...)
	d = b2.Disks[0]
	if d.CBT != "used" || d.BytesRead != 256<<10 || d.ChangeBase != b1.Disks[0].ChangeID {
		t.Fatalf("incremental over ssh: cbt %q read %d base %q", d.CBT, d.BytesRead, d.ChangeBase)
	}
	if q := b2.Notes["guest_quiesce"]; !strings.Contains(q, "not asked for") {
		t.Fatalf("guest_quiesce %q", q)
	}
	td.assertClean(d.ChangeID)
	e.restoreEquals(b1.Point, want1)
	e.restoreEquals(b2.Point, td.expected)

	// Ctrl-C over SSH ends the job and removes the remote run directory; a
	// SIGKILLed run's job is ended by the next run.
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		td.write(8<<20, 8<<20, byte(sig))
		cmd := e.command(context.Background(), append([]string{"backup", "--name", "vms", "--read-limit", "256KiB"}, src...)...)
		chunks := countChunks(t, e.repo)
		done := startUntil(t, cmd, "a new chunk", func() bool { return countChunks(t, e.repo) > chunks })
		_ = cmd.Process.Signal(sig)
		<-done
		if sig == syscall.SIGINT {
			if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Fatalf("interrupted backup exit %d", code)
			}
			td.assertClean(d.ChangeID)
		}
	}
	b3 := e.backupJSON("vms", src...)
	if d3 := b3.Disks[0]; d3.CBT != "used" || d3.BytesRead != 32*256<<10 || !strings.Contains(b3.Notes["cleaned_leftovers"], "backup job") {
		t.Fatalf("after the interrupted runs over ssh: cbt %q read %d notes %v", d3.CBT, d3.BytesRead, b3.Notes)
	}
	td.assertClean(b3.Disks[0].ChangeID)
	e.restoreEquals(b3.Point, td.expected)
	d = b3.Disks[0]

	// libvirt+ssh://USER@HOST:PORT/DOMAIN with the defaults under ~/.ssh:
	// an unknown host and a changed host key are refused before login.
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeKeyFile(t, filepath.Join(home, ".ssh", "id_ed25519"), srv.ClientKey)
	_, other := sshdtest.NewKeyPair(t)
	for _, tc := range []struct{ knownHosts, in string }{
		{"", "is not in known_hosts"},
		{knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, other) + "\n", "does not match known_hosts"},
	} {
		writeKeyFile(t, filepath.Join(home, ".ssh", "known_hosts"), []byte(tc.knownHosts))
		e.vars = append(e.vars, "HOME="+home)
		r := e.run("backup", "--name", "vms", "libvirt+ssh://root@"+srv.Addr+"/"+td.m.Name)
		if r.code != 1 || !strings.Contains(r.stderr, tc.in) || !strings.Contains(r.stderr, ssh.FingerprintSHA256(srv.HostPub)) ||
			strings.Contains(r.stderr, "root@") {
			t.Errorf("known_hosts %q: exit %d %q, want %q", tc.knownHosts, r.code, r.stderr, tc.in)
		}
	}
	td.assertClean(d.ChangeID)
}

func writeKeyFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
