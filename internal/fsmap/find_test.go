package fsmap

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// assemble makes a disk image of sizeMiB with the sfdisk script and copies
// each file system image into its partition (by start sector).
func assemble(t *testing.T, sizeMiB int64, script string, parts map[int64]string) string {
	t.Helper()
	need(t, "sfdisk")
	img := emptyImage(t, sizeMiB<<20)
	c := execIn(t, strings.NewReader(script), "sfdisk", "-q", img)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	dst, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for sector, src := range parts {
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.NewOffsetWriter(dst, sector*512), f); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
	}
	return img
}

func TestFindOnPartitionedDisk(t *testing.T) {
	need(t, "mkswap")
	ext := extImage(t, 64, "mkfs.ext4 -b 4096", "f1", "f3")
	xfs := xfsImage(t, 320, "")
	swap := emptyImage(t, 16<<20)
	sh(t, "mkswap", swap)
	script := "label: gpt\nstart=2048, size=131072, type=linux\nstart=133120, size=32768, type=swap\nstart=165888, size=655360, type=linux\n"
	img := assemble(t, 420, script, map[int64]string{2048: ext, 133120: swap, 165888: xfs})
	f, size := openImage(t, img)

	tests := []struct {
		name               string
		opt                Options
		wantFree, wantSwap int64
	}{
		{"nothing", Options{}, 0, 0},
		{"swap", Options{Swap: true}, 0, 16<<20 - 4096},
		{"free", Options{Free: true}, sum(dumpe2fsFree(t, ext, 0)) + sum(xfsdbFree(t, xfs)), 0},
		{"both", Options{Free: true, Swap: true}, sum(dumpe2fsFree(t, ext, 0)) + sum(xfsdbFree(t, xfs)), 16<<20 - 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Find(context.Background(), f, size, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Warnings) > 0 {
				t.Fatalf("warnings: %v", m.Warnings)
			}
			b := m.Bytes()
			if b[ReasonFree] != tt.wantFree || b[ReasonSwap] != tt.wantSwap {
				t.Fatalf("excluded %v, want free %d swap %d", b, tt.wantFree, tt.wantSwap)
			}
			for i, r := range m.Ranges {
				if r.Offset < 2048*512 || r.End() > size || (i > 0 && r.Offset < m.Ranges[i-1].End()) {
					t.Fatalf("range %d %+v out of order or outside the partitions", i, r)
				}
				if r.Reason == ReasonSwap && r.Offset != 133120*512+4096 {
					t.Fatalf("swap range %+v does not keep the header page", r)
				}
			}
		})
	}
}

// TestFindWarns: a damaged file system keeps all its data, says so, and
// the other volumes are still read.
func TestFindWarns(t *testing.T) {
	need(t, "mkswap")
	ext := extImage(t, 64, "mkfs.ext4")
	sh(t, "debugfs", "-w", "-R", "feature needs_recovery", ext)
	swap := emptyImage(t, 16<<20)
	sh(t, "mkswap", swap)
	img := assemble(t, 96, "label: dos\nstart=2048, size=131072, type=83\nstart=133120, size=32768, type=82\n",
		map[int64]string{2048: ext, 133120: swap})
	f, size := openImage(t, img)
	m, err := Find(context.Background(), f, size, Options{Free: true, Swap: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "partition 1 (ext4): nothing excluded") {
		t.Fatalf("warnings %q", m.Warnings)
	}
	if b := m.Bytes(); b[ReasonFree] != 0 || b[ReasonSwap] != 16<<20-4096 {
		t.Fatalf("excluded %v", b)
	}
	if _, err := Find(ctxCancelled(), f, size, Options{Free: true}); err == nil {
		t.Fatal("a cancelled context is not an error")
	}
}

func ctxCancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestNormalize(t *testing.T) {
	got := normalize([]Range{{10, 5, "free"}, {0, 10, "free"}, {12, 10, "swap"}, {-5, 2, "free"}, {90, 50, "free"}}, 100)
	want := []Range{{0, 15, "free"}, {15, 7, "swap"}, {90, 10, "free"}}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
}

func TestSubtractRuns(t *testing.T) {
	got := subtractRuns([]blockRun{{0, 10}, {20, 10}, {40, 5}}, []blockRun{{25, 100}, {2, 3}, {3, 1}, {9, 12}})
	want := []blockRun{{0, 2}, {5, 4}, {21, 4}}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
}
