package instant

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/vmx"
)

// TestESXiLayoutName: the VM folder and files are named after --name, else
// the name the platform recorded, else the point's VM name.
func TestESXiLayoutName(t *testing.T) {
	for _, tc := range []struct {
		name, given string
		m           repo.Manifest
		want        string
	}{
		{"given", "restored vm", repo.Manifest{VM: "a", Config: &repo.VMConfig{Name: "b"}}, "restored_vm"},
		{"recorded", "", repo.Manifest{VM: "a", Config: &repo.VMConfig{Name: "b\"\n"}}, "b__"},
		{"point", "", repo.Manifest{VM: "web-01"}, "web-01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := esxiLayout(tc.given, &tc.m, nil); got.Base != tc.want || got.VMX != tc.want+".vmx" {
				t.Errorf("layout %q %q, want %q", got.Base, got.VMX, tc.want)
			}
		})
	}
}

// TestWriteScratch: a fresh scratch area holds the VM folder with the .vmx
// and descriptors; what a host left there before is gone.
func TestWriteScratch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ScratchDir)
	if err := os.MkdirAll(filepath.Join(dir, "old"), 0o700); err != nil {
		t.Fatal(err)
	}
	l := vmx.New("vm", nil, []int64{1 << 20})
	if err := writeScratch(dir, l); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vm/vm.vmx", "vm/vm-disk0.vmdk"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "old")); !os.IsNotExist(err) {
		t.Errorf("a leftover stayed: %v", err)
	}
}
