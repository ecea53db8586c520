package file

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

func TestQcow2(t *testing.T) {
	requireQemu(t)
	tests := []struct {
		name   string
		size   int64
		opts   string // qemu-img create -o
		writes []string
		data   []source.Extent // must be in Allocated
		holes  []source.Extent // must not be in Allocated
	}{
		{name: "empty", size: 64 * miB, holes: []source.Extent{ext(0, 64*miB)}},
		{
			name: "written", size: 64 * miB,
			writes: []string{"write -P 0xab 1M 64k", "write -P 0xcd 5M 1M", "write -P 0x01 63M 1M"},
			data:   []source.Extent{ext(miB, 64*kiB), ext(5*miB, miB), ext(63*miB, miB)},
			holes:  []source.Extent{ext(0, miB), ext(2*miB, 3*miB), ext(7*miB, 56*miB)},
		},
		{
			name: "zero clusters", size: 16 * miB,
			writes: []string{"write -P 0xab 0 4M", "write -z 1M 1M"},
			data:   []source.Extent{ext(0, miB), ext(2*miB, 2*miB)},
			holes:  []source.Extent{ext(miB, miB), ext(4*miB, 12*miB)},
		},
		{
			name: "v2 header", size: 16 * miB, opts: "compat=0.10",
			writes: []string{"write -P 0x11 3M 64k"},
			data:   []source.Extent{ext(3*miB, 64*kiB)}, holes: []source.Extent{ext(0, 3*miB)},
		},
		{
			name: "512 byte clusters", size: 4 * miB, opts: "cluster_size=512",
			writes: []string{"write -P 0x22 1000 3000", "write -P 0x23 3M 512"},
			data:   []source.Extent{ext(1000, 3000), ext(3*miB, 512)}, holes: []source.Extent{ext(8*kiB, 3*miB-8*kiB)},
		},
		{
			name: "2M clusters odd size", size: 10*miB + 512, opts: "cluster_size=2M",
			writes: []string{"write -P 0x33 10M 512", "write -P 0x34 0 1"},
			data:   []source.Extent{ext(10*miB, 512), ext(0, 1)}, holes: []source.Extent{ext(2*miB, 8*miB)},
		},
		{
			name: "extended L2", size: 16 * miB, opts: "extended_l2=on,cluster_size=128k",
			writes: []string{"write -P 0x44 4k 4k", "write -P 0x45 8M 64k"},
			data:   []source.Extent{ext(4*kiB, 4*kiB), ext(8*miB, 64*kiB)},
			holes:  []source.Extent{ext(64*kiB, 8*miB-64*kiB), ext(9*miB, 7*miB)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.qcow2")
			args := []string{"create", "-q", "-f", "qcow2"}
			if tt.opts != "" {
				args = append(args, "-o", tt.opts)
			}
			run(t, "qemu-img", append(args, path, sz(tt.size))...)
			if len(tt.writes) > 0 {
				qemuIO(t, "qcow2", path, tt.writes...)
			}
			d := mustOpen(t, path)
			if got := d.Describe(); got != (source.Info{Format: "qcow2", Location: path}) {
				t.Errorf("Describe = %+v", got)
			}
			alloc := compareWithFile(t, d, toRaw(t, "qcow2", path))
			checkCoverage(t, alloc, tt.data, tt.holes)
		})
	}
}

// makeRaw writes a raw file with a few patterns and holes.
func makeRaw(t *testing.T, path string, size int64) {
	t.Helper()
	run(t, "qemu-img", "create", "-q", "-f", "raw", path, sz(size))
	qemuIO(t, "raw", path, "write -P 0x5a 0 3M", "write -P 0xa5 7M 64k", "write -P 0x77 12345 777")
}

func TestQcow2Compressed(t *testing.T) {
	requireQemu(t)
	for _, ctype := range []string{"zlib", "zstd"} {
		t.Run(ctype, func(t *testing.T) {
			dir := t.TempDir()
			rawPath, path := filepath.Join(dir, "src.raw"), filepath.Join(dir, "c.qcow2")
			makeRaw(t, rawPath, 16*miB)
			run(t, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type="+ctype, rawPath, path)
			d := mustOpen(t, path)
			alloc := compareWithFile(t, d, rawPath)
			checkCoverage(t, alloc, []source.Extent{ext(0, 3*miB), ext(7*miB, 64*kiB)}, []source.Extent{ext(4*miB, 3*miB)})
		})
	}
}

func TestQcow2BackingChain(t *testing.T) {
	requireQemu(t)
	tests := []struct {
		name       string
		baseFormat string
		baseOpts   string
		topOpts    string
	}{
		{name: "qcow2 base, larger overlay clusters", baseFormat: "qcow2", baseOpts: "cluster_size=64k", topOpts: "cluster_size=2M"},
		{name: "qcow2 base, smaller overlay clusters", baseFormat: "qcow2", baseOpts: "cluster_size=2M", topOpts: "cluster_size=4k"},
		{name: "raw base", baseFormat: "raw", baseOpts: "preallocation=off", topOpts: "cluster_size=64k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, "base."+tt.baseFormat)
			run(t, "qemu-img", "create", "-q", "-f", tt.baseFormat, "-o", tt.baseOpts, base, sz(8*miB))
			qemuIO(t, tt.baseFormat, base, "write -P 0x5a 1M 64k", "write -P 0x5b 6M 4k")
			top := filepath.Join(dir, "top.qcow2")
			// Relative backing name, larger overlay: resolution and clipping.
			run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", tt.topOpts, "-b", filepath.Base(base), "-F", tt.baseFormat, top, sz(12*miB))
			qemuIO(t, "qcow2", top, "write -P 0x77 1M 4k", "write -P 0x78 10M 4k")
			d := mustOpenWith(t, top, Options{Format: FormatQcow2, FollowBacking: true})
			alloc := compareWithFile(t, d, toRaw(t, "qcow2", top))
			checkCoverage(t, alloc,
				[]source.Extent{ext(miB, 64*kiB), ext(6*miB, 4*kiB), ext(10*miB, 4*kiB)},
				[]source.Extent{ext(8*miB, 2*miB)})
		})
	}
}

func TestQcow2Refused(t *testing.T) {
	requireQemu(t)
	tests := []struct {
		name      string
		create    func(t *testing.T, dir, path string)
		wantInErr string
	}{
		{
			name: "encrypted",
			create: func(t *testing.T, dir, path string) {
				// AES rather than LUKS: LUKS key setup benchmarks the CPU and
				// fails on a busy machine.
				run(t, "qemu-img", "create", "-q", "--object", "secret,id=sec0,data=abc", "-f", "qcow2",
					"-o", "encrypt.format=aes,encrypt.key-secret=sec0", path, "1M")
			},
			wantInErr: "encrypted",
		},
		{
			name: "external data file",
			create: func(t *testing.T, dir, path string) {
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "data.raw"), path, "1M")
			},
			wantInErr: "external data file",
		},
		{
			name: "missing backing file",
			create: func(t *testing.T, dir, path string) {
				base := filepath.Join(dir, "base.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "1M")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", path)
				os.Remove(base)
			},
			wantInErr: "base.qcow2",
		},
		{
			name: "backing loop",
			create: func(t *testing.T, dir, path string) {
				other := filepath.Join(dir, "other.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", other, "1M")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", other, "-F", "qcow2", path)
				run(t, "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", path, "-F", "qcow2", other)
			},
			wantInErr: "backing chain longer",
		},
		{
			name: "vmdk backing",
			create: func(t *testing.T, dir, path string) {
				base := filepath.Join(dir, "base.vmdk")
				run(t, "qemu-img", "create", "-q", "-f", "vmdk", base, "1M")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "vmdk", path)
			},
			wantInErr: `backing format "vmdk" not supported`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "disk.qcow2")
			tt.create(t, dir, path)
			d, err := Open(context.Background(), path, Options{Format: FormatQcow2, FollowBacking: true})
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantInErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not mention %q and the path", err, tt.wantInErr)
			}
			if errors.Is(err, source.ErrNotFound) {
				t.Errorf("error %v wraps ErrNotFound though the disk exists", err)
			}
		})
	}
}

// TestQcow2ConcurrentReads reads random ranges from several goroutines; run
// with -race to check the library's ReadAt is safe for concurrent use.
func TestQcow2ConcurrentReads(t *testing.T) {
	requireQemu(t)
	dir := t.TempDir()
	rawPath, path := filepath.Join(dir, "src.raw"), filepath.Join(dir, "c.qcow2")
	makeRaw(t, rawPath, 64*miB)
	qemuIO(t, "raw", rawPath, "write -P 0x42 20M 10M", "write -P 0x43 40M 17k")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k", rawPath, path)
	want, err := os.ReadFile(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	d := mustOpen(t, path)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			buf := make([]byte, 256*kiB)
			for range 200 {
				off := rng.Int64N(d.Size())
				n := min(rng.Int64N(int64(len(buf)))+1, d.Size()-off)
				if _, err := d.ReadAt(buf[:n], off); err != nil {
					t.Errorf("ReadAt(%d at %d): %v", n, off, err)
					return
				}
				if string(buf[:n]) != string(want[off:off+n]) {
					t.Errorf("ReadAt(%d at %d): wrong data", n, off)
					return
				}
			}
		})
	}
	wg.Wait()
}
