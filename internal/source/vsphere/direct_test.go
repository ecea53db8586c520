package vsphere_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
)

func TestDirect(t *testing.T) {
	s := newSimDisk(t)
	tr := vsphere.NewDirect(map[string]string{s.disk.File.Datastore: s.dsDir})
	if tr.Name() != source.TransportDirect {
		t.Fatalf("Name = %q", tr.Name())
	}
	d, err := tr.Open(context.Background(), s.env(), s.disk)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want := source.Info{Format: "vmdk-flat", Location: s.disk.File.String(), Transport: source.TransportDirect}
	if got := d.Describe(); got != want {
		t.Errorf("Describe = %+v, want %+v", got, want)
	}
	s.checkContent(t, d)
	alloc, err := d.Allocated(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range alloc {
		total += e.Length
	}
	if total == 0 || total > 16<<20 { // the flat file is sparse: 1 MiB + 4 KiB written
		t.Errorf("Allocated = %v (%d bytes): holes of the flat file not found", alloc, total)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// The descriptor and its extent names come from shared storage: they stay
// in the VM's directory, symbolic links are not followed.
func TestDirectRefused(t *testing.T) {
	s := newSimDisk(t)
	vmDir := filepath.Join(s.dsDir, s.disk.File.Dir())
	descriptor := filepath.Join(s.dsDir, s.disk.File.Path)
	orig, err := os.ReadFile(descriptor)
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret-flat.vmdk"), make([]byte, s.disk.Capacity>>20), 0o600); err != nil {
		t.Fatal(err)
	}
	writeDescriptor := func(extent string) func(t *testing.T) {
		return func(t *testing.T) {
			text := strings.Replace(string(orig), `"disk1-flat.vmdk"`, `"`+extent+`"`, 1)
			if text == string(orig) {
				t.Fatalf("no disk1-flat.vmdk extent in the simulator's descriptor:\n%s", orig)
			}
			if err := os.WriteFile(descriptor, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	symlink := func(target, link string) func(t *testing.T) {
		return func(t *testing.T) {
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
		}
	}
	small := s.disk
	small.Capacity -= 512
	otherDS := s.disk
	otherDS.File.Datastore = "OtherDS"
	tests := []struct {
		name      string
		paths     map[string]string
		disk      vsphere.SnapshotDisk
		setup     func(t *testing.T)
		want      error
		wantInErr string
	}{
		{name: "no datastore path", paths: map[string]string{"LocalDS_1": s.dsDir}, disk: s.disk,
			wantInErr: "no --datastore-path for datastore LocalDS_0"},
		{name: "wrong directory", paths: map[string]string{"LocalDS_0": t.TempDir()}, disk: s.disk,
			wantInErr: "no such file or directory"},
		{name: "size differs from vSphere's", disk: small, wantInErr: "vSphere says the disk has"},
		{name: "extent outside the directory", disk: s.disk, setup: writeDescriptor("../../" + filepath.Base(outside) + "/secret-flat.vmdk"),
			wantInErr: "leaves the VMDK's directory"},
		{name: "absolute extent", disk: s.disk, setup: writeDescriptor(filepath.Join(outside, "secret-flat.vmdk")),
			wantInErr: "leaves the VMDK's directory"},
		{name: "extent is a symlink", disk: s.disk, setup: func(t *testing.T) {
			writeDescriptor("link-flat.vmdk")(t)
			symlink(filepath.Join(outside, "secret-flat.vmdk"), filepath.Join(vmDir, "link-flat.vmdk"))(t)
		}, want: file.ErrEscape},
		{name: "VM directory is a symlink", disk: otherDS, paths: map[string]string{"OtherDS": outside}, setup: func(t *testing.T) {
			symlink(vmDir, filepath.Join(outside, s.disk.File.Dir()))(t)
		}, want: file.ErrEscape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() { _ = os.WriteFile(descriptor, orig, 0o600) }()
			if tt.setup != nil {
				tt.setup(t)
			}
			paths := tt.paths
			if paths == nil {
				paths = map[string]string{"LocalDS_0": s.dsDir}
			}
			d, err := vsphere.NewDirect(paths).Open(context.Background(), s.env(), tt.disk)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("Open = %v, want %v containing %q", err, tt.want, tt.wantInErr)
			}
		})
	}
}
