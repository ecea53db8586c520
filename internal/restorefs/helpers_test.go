package restorefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

const cs = repo.MinChunkSize

// chunk kinds of a generated image.
const (
	kRandom = iota // random bytes
	kZero          // written zeros (allocated, stored as a zero chunk)
	kHole          // never written (unallocated)
	kText          // the same compressible chunk each time (dedup)
)

// image is a generated disk image and the kind of each of its chunks.
type image struct {
	data  []byte
	kinds []int
	path  string
	// Without data: a sparse file of size bytes whose data lies in the
	// chunks written (chunk numbers).
	size    int64
	written []uint64
}

// genImage writes a raw image of the given chunk kinds plus a tail of
// tail random bytes to dir, leaving holes as holes.
func genImage(t testing.TB, dir string, seed uint64, kinds []int, tail int) *image {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	size := len(kinds)*cs + tail
	img := &image{data: make([]byte, size), kinds: kinds, path: filepath.Join(dir, "disk.img")}
	f, err := os.Create(img.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text := bytes.Repeat([]byte("holdfast restorefs "), cs/19+1)[:cs]
	for c, k := range kinds {
		b := img.data[c*cs : (c+1)*cs]
		switch k {
		case kRandom:
			fillRandom(rng, b)
		case kText:
			copy(b, text)
		case kHole:
			continue
		}
		if _, err := f.WriteAt(b, int64(c)*cs); err != nil {
			t.Fatal(err)
		}
	}
	if tail > 0 {
		b := img.data[len(kinds)*cs:]
		fillRandom(rng, b)
		if _, err := f.WriteAt(b, int64(len(kinds))*cs); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(int64(size)); err != nil {
		t.Fatal(err)
	}
	return img
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

// standardKinds: 40 chunks mixing every kind.
func standardKinds() []int {
	k := make([]int, 40)
	for i := range k {
		switch {
		case i < 10:
			k[i] = kRandom
		case i < 14:
			k[i] = kZero
		case i < 20:
			k[i] = kHole
		case i < 26:
			k[i] = kText
		case i < 30:
			k[i] = kHole
		default:
			k[i] = kRandom
		}
	}
	k[33] = kHole // an isolated hole between data chunks
	return k
}

// fixture is a real repository with one restore point of generated images.
type fixture struct {
	r      *repo.Repository
	root   string
	m      *repo.Manifest
	images []*image
}

func newRepo(t testing.TB) (*repo.Repository, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "repo")
	return testrepo.New(t, storage.NewLocal(root)), root
}

// newFixture backs up the images (one disk each) into a new repository,
// as a backup does: chunks of zeros (written or not) are left out of the
// index, every other chunk is stored once by content.
func newFixture(t testing.TB, images ...*image) *fixture {
	t.Helper()
	ctx := context.Background()
	r, root := newRepo(t)
	h := r.NewHasher()
	m := &repo.Manifest{ID: r.NewPointID(), VM: "vm1", Time: time.Now().UTC()}
	for i, img := range images {
		ix := &repo.Index{DiskSize: int64(len(img.data)), ChunkSize: cs}
		chunk, written := img.data, img.written
		if img.data == nil {
			ix.DiskSize = img.size
			chunk = make([]byte, cs)
		} else {
			for n := range ix.Chunks() {
				written = append(written, n)
			}
		}
		for _, n := range written {
			b := img.chunk(t, n, chunk[:ix.ChunkLen(n)])
			if !bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) {
				continue
			}
			id := h.Sum(b)
			if _, err := r.PutChunk(ctx, id, b); err != nil {
				t.Fatal(err)
			}
			ix.Entries = append(ix.Entries, repo.IndexEntry{N: n, ID: id})
		}
		hash, err := r.SaveIndex(ctx, m.ID, i, ix)
		if err != nil {
			t.Fatal(err)
		}
		m.Disks = append(m.Disks, repo.DiskManifest{Index: i, Size: ix.DiskSize, ChunkSize: cs, Format: "raw",
			Location: img.path, IndexHash: hash, Chunks: len(ix.Entries)})
	}
	if err := r.CommitPoint(ctx, m); err != nil {
		t.Fatal(err)
	}
	return &fixture{r: r, root: root, m: m, images: images}
}

// chunk returns chunk n of the image, read into buf from the file when the
// image has no data in memory.
func (img *image) chunk(t testing.TB, n uint64, buf []byte) []byte {
	t.Helper()
	off := int64(n) * cs
	if img.data != nil {
		return img.data[off : off+int64(len(buf))]
	}
	f, err := os.Open(img.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	return buf
}

func standardFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixture(t, genImage(t, t.TempDir(), 1, standardKinds(), 1000))
}

func (fx *fixture) open(t testing.TB, s repo.PointReader, disk int, o Options) *Disk {
	t.Helper()
	if s == nil {
		s = fx.r
	}
	d, err := OpenDisk(context.Background(), s, fx.m, disk, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// fileState lists every file of the repository with size and time.
func fileState(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d %s", path, fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// countingStore wraps a repo.PointReader: it counts fetches and the bytes of chunks
// handed out, can hold fetches at a gate and can fail chosen chunks.
type countingStore struct {
	repo.PointReader
	gets    atomic.Int64
	mu      sync.Mutex
	perID   map[repo.ChunkID]int
	gate    chan struct{} // if set, GetChunk waits for it to close
	started chan struct{} // if set, receives one value per GetChunk start
	fail    func(id repo.ChunkID) error
	delay   time.Duration // added to every fetch (a slow network)
}

var errInjected = errors.New("injected fetch error")

func newCountingStore(s repo.PointReader) *countingStore {
	return &countingStore{PointReader: s, perID: map[repo.ChunkID]int{}}
}

func (c *countingStore) GetChunk(ctx context.Context, h *repo.Hasher, id repo.ChunkID, dst []byte) ([]byte, error) {
	c.gets.Add(1)
	c.mu.Lock()
	c.perID[id]++
	fail := c.fail
	c.mu.Unlock()
	if c.started != nil {
		c.started <- struct{}{}
	}
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	if fail != nil {
		if err := fail(id); err != nil {
			return nil, err
		}
	}
	return c.PointReader.GetChunk(ctx, h, id, dst)
}
