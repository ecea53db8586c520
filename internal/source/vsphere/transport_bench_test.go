package vsphere_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
)

// The vSphere benchmarks (bench/vsphere-transports.sh runs each in its own process,
// for its peak RSS) read one disk of the in-process simulator through a
// transport, or download it with plain parallel ranged HTTPS GETs (the
// baseline of network mode). The disk is a thin flat VMDK of
// HF_VSPHERE_BENCH_SIZE bytes (default 4 GiB) holding
// HF_VSPHERE_BENCH_DATA bytes of random data (default 256 MiB) in runs of
// HF_VSPHERE_BENCH_RUN bytes (default 64 MiB: the allocated areas of a
// thin disk) spread evenly. The transports read exactly those runs (what CBT
// would name) as the backup pipeline does: in HF_VSPHERE_BENCH_REQUEST
// reads (default 1 MiB, the default chunk size), HF_VSPHERE_BENCH_PARALLEL
// (default 4, the pipeline's workers on 2 cores) at a time; the baseline
// downloads the runs with ranged GETs of HF_VSPHERE_BENCH_BASELINE_REQUEST
// bytes (default 4 MiB; at most a run: one streaming GET per run), as many
// in flight.

// benchAlign aligns runs and bounds request sizes.
const benchAlign = 4 << 20

type benchDisk struct {
	*simDisk
	runs     []source.Extent
	parallel int
	request  int64 // the transports' read size
	baseline int64 // the HTTPS download's request size
}

func envBytes(b *testing.B, name string, def int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number of bytes", name, v)
	}
	return n
}

// newBenchDisk replaces DC0_H0_VM0's disk by a thin one of the configured
// size and data.
func newBenchDisk(b *testing.B) *benchDisk {
	b.Helper()
	size := envBytes(b, "HF_VSPHERE_BENCH_SIZE", 4<<30) &^ (benchAlign - 1)
	run := max(envBytes(b, "HF_VSPHERE_BENCH_RUN", 64<<20)&^(benchAlign-1), benchAlign)
	data := min(envBytes(b, "HF_VSPHERE_BENCH_DATA", 256<<20), size) / run * run
	s := startSimDisk(b)
	s.sim.SetDiskCapacity(b, s.vmName, 0, size)
	s.disk.Capacity = size
	f, err := os.OpenFile(s.flat, os.O_RDWR|os.O_TRUNC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	d := &benchDisk{simDisk: s, parallel: int(envBytes(b, "HF_VSPHERE_BENCH_PARALLEL", 4)),
		request:  min(envBytes(b, "HF_VSPHERE_BENCH_REQUEST", 1<<20), run),
		baseline: min(envBytes(b, "HF_VSPHERE_BENCH_BASELINE_REQUEST", benchAlign), run)}
	n := data / run
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, benchAlign)
	for i := range n {
		off := (size / n * i) &^ (benchAlign - 1)
		for o := off; o < off+run; o += benchAlign {
			_, _ = rng.Read(buf)
			if _, err := f.WriteAt(buf, o); err != nil {
				b.Fatal(err)
			}
		}
		d.runs = append(d.runs, source.Extent{Offset: off, Length: run})
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return d
}

// readRuns reads every run through r in reads of size request, parallel
// at a time, and returns the bytes read.
func (d *benchDisk) readRuns(ctx context.Context, r io.ReaderAt, request int64) (int64, error) {
	next := make(chan source.Extent)
	errs := make(chan error, d.parallel)
	var wg sync.WaitGroup
	for range d.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for e := range next {
				if int64(len(buf)) < e.Length {
					buf = make([]byte, e.Length)
				}
				if _, err := r.ReadAt(buf[:e.Length], e.Offset); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, run := range d.runs {
		for off := run.Offset; off < run.End(); off += request {
			select {
			case next <- source.Extent{Offset: off, Length: min(request, run.End()-off)}:
			case err = <-errs:
				break feed
			case <-ctx.Done():
				err = ctx.Err()
				break feed
			}
		}
	}
	close(next)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range d.runs {
		n += e.Length
	}
	return n, nil
}

// benchTransport opens the disk through tr, lists its allocation and reads
// the runs, b.N times.
func benchTransport(b *testing.B, d *benchDisk, tr vsphere.Transport) {
	ctx := context.Background()
	var total int64
	b.ResetTimer()
	for range b.N {
		disk, err := tr.Open(ctx, d.env(), d.disk)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := disk.Allocated(ctx); err != nil {
			b.Fatal(err)
		}
		n, err := d.readRuns(ctx, disk, d.request)
		if err != nil {
			b.Fatal(err)
		}
		total += n
		if err := disk.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.SetBytes(total / int64(b.N))
	b.ReportMetric(float64(total)/float64(b.N), "bytes_read/op")
}

func BenchmarkVSphereDirect(b *testing.B) {
	d := newBenchDisk(b)
	benchTransport(b, d, vsphere.NewDirect(map[string]string{d.disk.File.Datastore: d.dsDir}))
}

func BenchmarkVSphereHotAdd(b *testing.B) {
	d := newBenchDisk(b)
	benchTransport(b, d, vsphere.NewHotAdd(proxyName, d.simFinder(b)))
}

// BenchmarkVSphereHTTPS is the baseline of network mode: the same runs of
// the flat file downloaded from the simulator's /folder with plain ranged
// GETs over the session's HTTPS client.
func BenchmarkVSphereHTTPS(b *testing.B) {
	d := newBenchDisk(b)
	u := d.client.Client.URL()
	u.Path = "/folder/" + strings.TrimSuffix(d.disk.File.Path, ".vmdk") + "-flat.vmdk"
	u.RawQuery = url.Values{"dcPath": {d.disk.Datacenter}, "dsName": {d.disk.File.Datastore}}.Encode()
	r := &rangedGET{hc: &d.client.Client.Client.Client, url: u.String()}
	ctx := context.Background()
	var total int64
	b.ResetTimer()
	for range b.N {
		n, err := d.readRuns(ctx, r, d.baseline)
		if err != nil {
			b.Fatal(err)
		}
		total += n
	}
	b.StopTimer()
	b.SetBytes(total / int64(b.N))
	b.ReportMetric(float64(total)/float64(b.N), "bytes_read/op")
}

// rangedGET reads a URL with one ranged GET per ReadAt.
type rangedGET struct {
	hc  *http.Client
	url string
}

func (r *rangedGET) ReadAt(p []byte, off int64) (int, error) {
	req, err := http.NewRequest(http.MethodGet, r.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("GET %s: %s", r.url, resp.Status)
	}
	return io.ReadFull(resp.Body, p)
}

// BenchmarkVSphereNBD reads the runs in network mode (the flat extent's
// ranged GETs through the session, HF_VSPHERE_BENCH_PARALLEL connections).
func BenchmarkVSphereNBD(b *testing.B) {
	d := newBenchDisk(b)
	benchTransport(b, d, vsphere.NewNBD(d.parallel))
}
