package esxi

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/export/nfs"
	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
)

// vsphereConfig is a VM's configuration as a vSphere backup records it.
func vsphereConfig() *repo.VMConfig {
	return &repo.VMConfig{Platform: "vsphere", Name: "web-01", GuestID: "ubuntu64Guest", Version: "vmx-19",
		CPUs: 2, MemoryMiB: 3072, Firmware: "efi",
		Disks: []repo.VMDisk{
			{Index: 0, Controller: "pvscsi 0", Bus: 0, Unit: 0, CapacityBytes: 3 << 20},
			{Index: 1, Controller: "lsilogic 1", Bus: 1, Unit: 2, CapacityBytes: 1 << 20},
		},
		NICs: []repo.VMNIC{{Model: "vmxnet3", Network: "VM Network", MAC: "00:50:56:aa:bb:cc"}}}
}

// point commits a point of VM web-01 with two disks of random bytes (the
// sizes of vsphereConfig) and returns the repository, the point and the
// disks' bytes.
func point(t *testing.T) (*repo.Repository, *repo.Manifest, [][]byte) {
	t.Helper()
	r := testrepo.New(t, nil)
	cfg := vsphereConfig()
	m := &repo.Manifest{VM: "web-01", Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Config: cfg}
	rng := rand.New(rand.NewPCG(1, 2))
	var disks [][]byte
	for _, d := range cfg.Disks {
		data := make([]byte, d.CapacityBytes)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		disks = append(disks, data)
	}
	testrepo.CommitPoint(t, r, m, disks)
	return r, m, disks
}

// session is a serving instant recovery session with an NFS export on
// loopback (ephemeral ports).
type session struct {
	reg                instant.Registry
	rec                instant.Record
	nfsPort, mountPort int
	disks              [][]byte
	stop               func()
}

func serve(t *testing.T) *session {
	t.Helper()
	r, m, disks := point(t)
	l, err := nfs.Listen("127.0.0.1", 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &session{reg: instant.Registry{Dir: filepath.Join(t.TempDir(), "sessions")}, disks: disks,
		nfsPort: l.NFSTCP.Addr().(*net.TCPAddr).Port, mountPort: l.MountTCP.Addr().(*net.TCPAddr).Port}
	id := instant.NewID()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan instant.Record, 1)
	done := make(chan error, 1)
	go func() {
		done <- instant.Serve(ctx, instant.Options{ID: id, Store: r, Point: m, RedoDir: filepath.Join(t.TempDir(), id),
			NFS: &l, Registry: s.reg, Ready: func(rec instant.Record) { ready <- rec }})
	}()
	select {
	case s.rec = <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(s.stop)
	return s
}

// nas returns the simulator's NAS extension mounting the session's export:
// with the kernel's NFS client when the test may, else by copying it with
// libnfs; the test is skipped when neither works.
func (s *session) nas(t *testing.T) (*vcsim.NAS, bool) {
	t.Helper()
	if m, u, ok := vcsim.KernelMount(s.nfsPort, s.mountPort); ok {
		return &vcsim.NAS{Mount: m, Unmount: u}, true
	}
	m, u, ok := vcsim.CopyMount(s.nfsPort, s.mountPort)
	if !ok {
		t.Skip("neither a kernel NFS client (root, mount.nfs) nor libnfs's nfs-ls/nfs-cp")
	}
	t.Log("no kernel NFS client: the simulated host copies the export with libnfs")
	return &vcsim.NAS{Mount: m, Unmount: u}, false
}

func equalBytes(a, b []byte) bool { return bytes.Equal(a, b) }
