package guestfiles

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/guestimg"
	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// TestLVM: a PV made by the real LVM tools on a loop device of our own,
// a VG with two LVs where "data" has two segments (the other LV between
// them), an ext4 filesystem written across the segments where the tools
// say they lie; the tree reads it as volume VG-data.
func TestLVM(t *testing.T) {
	src := guesttree.Build(t, t.TempDir(), guesttree.Options{BigDir: 30, Deep: 3, NoSparse: true})
	fs, err := os.ReadFile(guesttree.Ext4(t, src, 24))
	if err != nil {
		t.Fatal(err)
	}
	vg := fmt.Sprintf("hf-test%d", os.Getpid())
	pvImg, _ := guestimg.SplitLV(t, vg, fs)
	img := guesttree.Disk(t, 80, "label: gpt\nstart=2048, size=133120, type=lvm\n", map[int64]string{2048 * 512: pvImg})
	tr := openTree(t, img)
	v := tr.Single()
	if v == nil || v.Name != strings.ReplaceAll(vg, "-", "--")+"-data" {
		for _, x := range tr.Volumes {
			t.Logf("volume %s: %v", x.Name, x.Err)
		}
		t.Fatalf("no single readable LV")
	}
	dest := t.TempDir()
	if _, err := Restore(context.Background(), v.FS, []string{"/"}, dest, RestoreOptions{Owners: true, SetID: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dest, "lost+found")); err != nil {
		t.Fatal(err)
	}
	guesttree.Compare(t, src, dest, guesttree.CompareOptions{Owners: true, Times: true, Links: true})
	other := false
	for _, x := range tr.Volumes {
		if x.Name == strings.ReplaceAll(vg, "-", "--")+"-other" {
			other = x.FS == nil && x.Err != nil && x.Size == 8<<20
		}
	}
	if !other {
		t.Error("the LV without a filesystem is not listed as such")
	}
}
