package guestfiles

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// A huge sparse file (lastlog on a host with large UIDs is terabytes of
// holes) is compared by its data, not by reading every hole; a byte that
// differs in data one side has and the other has as a hole is found.
func TestDiffSparseComparesDataOnly(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		f, err := os.Create(filepath.Join(d, "lastlog"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("head"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("tail"), 1<<30); err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(1 << 40); err != nil { // 1 TiB
			t.Fatal(err)
		}
		_ = f.Close()
	}
	// in b the middle page is written with zeros: data where a has a hole
	if err := os.WriteFile(filepath.Join(a, "mid"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(b, "mid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(8192); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	guesttree.SetTimes(t, a)
	guesttree.SetTimes(t, b)
	ta, tb := openTree(t, guesttree.Ext4(t, a, 16)), openTree(t, guesttree.Ext4(t, b, 16))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	err = Diff(ctx, ta.Single().FS, tb.Single().FS, "/", func(c Change) error {
		got = append(got, c.Kind+" "+c.Path+" "+strings.Join(c.Reasons, ","))
		return nil
	})
	if err != nil || len(got) != 0 {
		t.Fatalf("equal trees: %q %v", got, err)
	}
	// one byte of b's tail differs
	b2 := t.TempDir()
	guesttree.Run(t, nil, "cp", "-a", "--sparse=always", b+"/.", b2)
	f, err = os.OpenFile(filepath.Join(b2, "lastlog"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("T"), 1<<30); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	guesttree.SetTimes(t, b2)
	tb2 := openTree(t, guesttree.Ext4(t, b2, 16))
	got = nil
	err = Diff(ctx, ta.Single().FS, tb2.Single().FS, "/", func(c Change) error {
		got = append(got, c.Kind+" "+c.Path+" "+strings.Join(c.Reasons, ","))
		return nil
	})
	if err != nil || len(got) != 1 || got[0] != Changed+" /lastlog content" {
		t.Fatalf("changed tail: %q %v", got, err)
	}
}
