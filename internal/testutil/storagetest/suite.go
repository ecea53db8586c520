package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// Run checks that the backends newBackend makes keep the storage.Backend
// contract. Every subtest gets a new, empty backend.
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b storage.Backend)
	}{
		{"save and load", testSaveLoad},
		{"overwrite", testOverwrite},
		{"not exist", testNotExist},
		{"list", testList},
		{"rename", testRename},
		{"touch", testTouch},
		{"buffers are not shared", testBuffers},
		{"save is atomic", testAtomicSave},
		{"concurrent saves", testConcurrentSaves},
		{"cancelled context", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBackend(t)) })
	}
}

// content returns n bytes that differ with seed.
func content(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/251)
	}
	return b
}

func mustSave(t *testing.T, b storage.Backend, name string, data []byte) {
	t.Helper()
	if err := b.Save(context.Background(), name, data); err != nil {
		t.Fatalf("save %s: %v", name, err)
	}
}

func mustLoad(t *testing.T, b storage.Backend, name string) []byte {
	t.Helper()
	data, err := b.Load(context.Background(), name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return data
}

// listAll returns the files below dir by name.
func listAll(t *testing.T, b storage.Backend, dir string) map[string]storage.FileInfo {
	t.Helper()
	got := map[string]storage.FileInfo{}
	err := b.List(context.Background(), dir, func(fi storage.FileInfo) error {
		if _, dup := got[fi.Name]; dup {
			t.Errorf("list %s: %s reported twice", dir, fi.Name)
		}
		got[fi.Name] = fi
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	return got
}

func testSaveLoad(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		size int
	}{{"config", 0}, {"keys/k1", 17}, {"chunks/ab/ab12cd", 64 << 10}, {"points/p1", 1<<20 + 3}} {
		data := content(byte(tc.size), tc.size)
		mustSave(t, b, tc.name, data)
		if got := mustLoad(t, b, tc.name); !bytes.Equal(got, data) {
			t.Errorf("load %s: %d bytes differ from the %d saved", tc.name, len(got), len(data))
		}
		fi, err := b.Stat(ctx, tc.name)
		if err != nil || fi.Name != tc.name || fi.Size != int64(tc.size) {
			t.Errorf("stat %s: %+v, %v; want size %d", tc.name, fi, err, tc.size)
		}
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if got := mustLoad(t, b, "keys/k1"); !bytes.Equal(got, content(17, 17)) {
		t.Errorf("load after sync differs")
	}
	if b.Location() == "" {
		t.Errorf("Location is empty")
	}
}

func testOverwrite(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	mustSave(t, b, "dir/f", content(1, 5000))
	mustSave(t, b, "dir/f", content(2, 100))
	if got := mustLoad(t, b, "dir/f"); !bytes.Equal(got, content(2, 100)) {
		t.Errorf("load after overwrite: %d bytes, not the new content", len(got))
	}
	if fi, err := b.Stat(ctx, "dir/f"); err != nil || fi.Size != 100 {
		t.Errorf("stat after overwrite: %+v, %v", fi, err)
	}
	if got := listAll(t, b, "dir"); len(got) != 1 || got["dir/f"].Size != 100 {
		t.Errorf("list after overwrite: %+v", got)
	}
}

func testNotExist(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	mustSave(t, b, "dir/present", []byte("x"))
	mustSave(t, b, "dir/removed", []byte("y"))
	if err := b.Remove(ctx, "dir/removed"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	for _, name := range []string{"missing", "dir/missing", "nodir/missing", "dir/removed"} {
		t.Run(name, func(t *testing.T) {
			if _, err := b.Load(ctx, name); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("load: %v, want ErrNotExist", err)
			}
			if _, err := b.Stat(ctx, name); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("stat: %v, want ErrNotExist", err)
			}
			if err := b.Touch(ctx, name); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("touch: %v, want ErrNotExist", err)
			}
			if err := b.Rename(ctx, name, "dir/target"); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("rename: %v, want ErrNotExist", err)
			}
			if err := b.Remove(ctx, name); err != nil {
				t.Errorf("remove of a missing file: %v, want nil", err)
			}
		})
	}
	// A present file is not classified as missing, and nothing appeared.
	if _, err := b.Stat(ctx, "dir/present"); err != nil {
		t.Errorf("stat of a present file: %v", err)
	}
	if got := listAll(t, b, "dir"); len(got) != 1 {
		t.Errorf("list: %v, want only dir/present", slices.Sorted(mapKeys(got)))
	}
	if got := listAll(t, b, "nodir"); len(got) != 0 {
		t.Errorf("list of a missing directory: %v", got)
	}
}

func mapKeys(m map[string]storage.FileInfo) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func testList(t *testing.T, b storage.Backend) {
	files := map[string]int{
		"data/a": 1, "data/sub/b": 20, "data/sub/deeper/c": 300,
		"datax/d": 4, "other/e": 5, "top": 6,
	}
	for name, n := range files {
		mustSave(t, b, name, content(byte(n), n))
	}
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"data", []string{"data/a", "data/sub/b", "data/sub/deeper/c"}},
		{"data/sub", []string{"data/sub/b", "data/sub/deeper/c"}},
		{"datax", []string{"datax/d"}},
		{"other", []string{"other/e"}},
		{"none", nil},
	} {
		got := listAll(t, b, tc.dir)
		names := slices.Sorted(mapKeys(got))
		if !slices.Equal(names, tc.want) {
			t.Errorf("list %s: %v, want %v", tc.dir, names, tc.want)
		}
		for name, fi := range got {
			if fi.Size != int64(files[name]) {
				t.Errorf("list %s: %s size %d, want %d", tc.dir, name, fi.Size, files[name])
			}
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := b.List(context.Background(), "data", func(storage.FileInfo) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("list with a failing callback: %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func testRename(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	mustSave(t, b, "a/from", []byte("moving"))
	if err := b.Rename(ctx, "a/from", "b/new/to"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if got := mustLoad(t, b, "b/new/to"); string(got) != "moving" {
		t.Errorf("renamed content %q", got)
	}
	if _, err := b.Load(ctx, "a/from"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("source after rename: %v, want ErrNotExist", err)
	}
	mustSave(t, b, "a/other", []byte("other"))
	if err := b.Rename(ctx, "a/other", "b/new/to"); !errors.Is(err, storage.ErrExist) {
		t.Errorf("rename onto an existing file: %v, want ErrExist", err)
	}
	if got := mustLoad(t, b, "b/new/to"); string(got) != "moving" {
		t.Errorf("target replaced: %q", got)
	}
	if got := mustLoad(t, b, "a/other"); string(got) != "other" {
		t.Errorf("source of a refused rename: %q", got)
	}
}

func testTouch(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	mustSave(t, b, "chunks/t", []byte("touched"))
	before, err := b.Stat(ctx, "chunks/t")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Touch(ctx, "chunks/t"); err != nil {
		t.Fatalf("touch: %v", err)
	}
	after, err := b.Stat(ctx, "chunks/t")
	if err != nil {
		t.Fatal(err)
	}
	if after.ModTime.Before(before.ModTime) || after.Size != before.Size {
		t.Errorf("touch: %+v, before %+v", after, before)
	}
	if got := mustLoad(t, b, "chunks/t"); string(got) != "touched" {
		t.Errorf("content after touch %q", got)
	}
}

func testBuffers(t *testing.T, b storage.Backend) {
	data := []byte("original")
	mustSave(t, b, "f", data)
	copy(data, "mutated!")
	got := mustLoad(t, b, "f")
	if string(got) != "original" {
		t.Fatalf("the backend kept the caller's buffer: %q", got)
	}
	copy(got, "mutated!")
	if again := mustLoad(t, b, "f"); string(again) != "original" {
		t.Fatalf("Load handed out the backend's buffer: %q", again)
	}
}

// testAtomicSave overwrites a file while readers load and list it: each
// sees one complete version, never a prefix, a mix or a temporary file.
func testAtomicSave(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	versions := [][]byte{content(1, 256<<10), content(2, 384<<10+1)}
	mustSave(t, b, "dir/f", versions[0])
	const saves = 40
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 1; i <= saves; i++ {
			if err := b.Save(ctx, "dir/f", versions[i%2]); err != nil {
				t.Errorf("save %d: %v", i, err)
				return
			}
		}
	}()
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for reads := 0; ; reads++ {
				select {
				case <-done:
					if reads > 0 {
						return
					}
				default:
				}
				got, err := b.Load(ctx, "dir/f")
				if err != nil {
					t.Errorf("load during saves: %v", err)
					return
				}
				if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
					t.Errorf("load during saves: %d bytes, neither version", len(got))
					return
				}
				err = b.List(ctx, "dir", func(fi storage.FileInfo) error {
					if fi.Name != "dir/f" {
						return fmt.Errorf("list during saves reported %q", fi.Name)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := mustLoad(t, b, "dir/f"); !bytes.Equal(got, versions[saves%2]) {
		t.Errorf("after the saves: %d bytes, not the last version", len(got))
	}
}

func testConcurrentSaves(t *testing.T, b storage.Backend) {
	const writers, each = 8, 16
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				name := fmt.Sprintf("chunks/%02x/w%d-%d", (w*each+i)%4, w, i)
				if err := b.Save(context.Background(), name, content(byte(w*each+i), 1000+i)); err != nil {
					t.Errorf("save %s: %v", name, err)
				}
				if err := b.Save(context.Background(), "shared", content(byte(w), 4096+w)); err != nil {
					t.Errorf("save shared: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	got := listAll(t, b, "chunks")
	if len(got) != writers*each {
		t.Errorf("list: %d files, want %d", len(got), writers*each)
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			name := fmt.Sprintf("chunks/%02x/w%d-%d", (w*each+i)%4, w, i)
			if data := mustLoad(t, b, name); !bytes.Equal(data, content(byte(w*each+i), 1000+i)) {
				t.Errorf("%s: wrong content", name)
			}
		}
	}
	shared := mustLoad(t, b, "shared")
	ok := false
	for w := 0; w < writers; w++ {
		ok = ok || bytes.Equal(shared, content(byte(w), 4096+w))
	}
	if !ok {
		t.Errorf("shared: %d bytes, not one complete version", len(shared))
	}
}

func testCancelled(t *testing.T, b storage.Backend) {
	mustSave(t, b, "f", []byte("kept"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Save(ctx, "g", []byte("never")); err == nil {
		t.Errorf("save with a cancelled context succeeded")
	}
	if _, err := b.Load(ctx, "f"); err == nil {
		t.Errorf("load with a cancelled context succeeded")
	}
	if _, err := b.Load(context.Background(), "g"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("a refused save stored the file: %v", err)
	}
}
