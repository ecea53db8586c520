package nbd

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

// startNbdkit runs nbdkit on a unix socket and returns the URL of its
// default export.
func startNbdkit(t *testing.T, args ...string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "nbdkit.sock")
	startProc(t, "nbdkit", append([]string{"-f", "--exit-with-parent", "-U", sock}, args...)...)
	waitListening(t, "unix", sock)
	return "nbd+unix:///?socket=" + sock
}

func TestNbdkit(t *testing.T) {
	needBins(t, "nbdkit")
	t.Run("memory", func(t *testing.T) {
		c := dialT(t, startNbdkit(t, "memory", "64M"), ClientOptions{MetaContexts: []string{ContextBaseAllocation}})
		ctx := testCtx(t)
		data := bytes.Repeat([]byte{0xa5}, 3<<20)
		if _, err := c.WriteAtContext(ctx, data, 7<<20); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(data)+8192)
		if _, err := c.ReadAtContext(ctx, got, 7<<20-4096); err != nil {
			t.Fatal(err)
		}
		if !allZero(got[:4096]) || !bytes.Equal(got[4096:4096+len(data)], data) || !allZero(got[4096+len(data):]) {
			t.Fatal("read back differs")
		}
		alloc, err := c.AllocatedExtents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []Extent{{7 << 20, 3 << 20, 0}}; !reflect.DeepEqual(alloc, want) {
			t.Fatalf("allocated %+v, want %+v", alloc, want)
		}
		if err := c.WriteZeroes(ctx, 8<<20, 1<<20); err != nil {
			t.Fatal(err)
		}
		if err := c.Trim(ctx, 9<<20, 1<<20); err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("file", func(t *testing.T) {
		path, want := makeImage(t, t.TempDir(), 64<<20, testRegions())
		c := dialT(t, startNbdkit(t, "file", "file="+path), ClientOptions{MetaContexts: []string{ContextBaseAllocation}})
		if got := readAllChunks(t, c, c.Size(), 8<<20); !bytes.Equal(got, want) {
			t.Fatal("content differs")
		}
		ext, err := c.BlockStatus(testCtx(t), ContextBaseAllocation, 0, c.Size())
		if err != nil {
			t.Fatal(err)
		}
		if got, exp := extentsToAlloc(ext), qemuImgMapIfPresent(t, path); exp != nil && !reflect.DeepEqual(got, exp) {
			t.Fatalf("extents\n got %+v\nwant %+v", got, exp)
		}
	})
}

func qemuImgMapIfPresent(t *testing.T, path string) []allocFlags {
	needBins(t, "qemu-img")
	return qemuImgMap(t, "raw", path)
}

// pipelinedReads runs 64 goroutines reading random ranges of r concurrently.
func pipelinedReads(t *testing.T, c *Client, want []byte) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 8 {
				n := 1 + rng.IntN(2<<20)
				off := rng.Int64N(int64(len(want) - n))
				p := make([]byte, n)
				if _, err := c.ReadAtContext(testCtx(t), p, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(p, want[off:off+int64(n)]) {
					errs <- fmt.Errorf("data mismatch in %d bytes at %d", n, off)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestQemuNBDPipelining(t *testing.T) {
	needBins(t, "qemu-nbd")
	path, want := makeImage(t, t.TempDir(), 64<<20, testRegions())
	c := dialT(t, startQemuNBD(t, false, "-f", "raw", "-r", path), ClientOptions{MaxInFlight: 32})
	pipelinedReads(t, c, want)
}

func TestQemuNBDMultiConn(t *testing.T) {
	needBins(t, "qemu-nbd")
	path, want := makeImage(t, t.TempDir(), 64<<20, testRegions())
	url := startQemuNBD(t, false, "-f", "raw", "-r", path)
	m, err := DialMulti(testCtx(t), url, ClientOptions{}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.Clients()) != 4 {
		t.Fatalf("%d connections", len(m.Clients()))
	}
	if got := readAllChunks(t, m, m.Size(), 1<<20); !bytes.Equal(got, want) {
		t.Fatal("content differs")
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 1<<20)
			if _, err := m.ReadAt(p, 40<<20); err != nil || !bytes.Equal(p, want[40<<20:41<<20]) {
				t.Error("concurrent read failed", err)
			}
		}()
	}
	wg.Wait()
}
