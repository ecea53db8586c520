package vsphere_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
)

// benchSize is the disk size of the throughput benchmark
// (HOLDFAST_BENCH_SIZE bytes, default 512 MiB).
func benchSize(t *testing.T) int64 {
	if s := os.Getenv("HOLDFAST_BENCH_SIZE"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return 512 << 20
}

// TestBenchNBDThroughput compares network mode (a session's disk read
// by 4 workers in 4 MiB requests, each reads of 8 MiB and more split, as the
// pipeline reads it) with a plain parallel HTTPS download of the same
// flat file (4 connections, one ranged GET each). It runs only with
// HOLDFAST_BENCH=1 (bench/vsphere.sh) and prints a Markdown table.
func TestBenchNBDThroughput(t *testing.T) {
	if os.Getenv("HOLDFAST_BENCH") != "1" {
		t.Skip("benchmark: set HOLDFAST_BENCH=1 (bench/vsphere.sh)")
	}
	size := benchSize(t)
	sim, _ := startSim(t)
	sim.RequireSession(false) // the plain downloads below carry no session cookie
	sim.SetDiskCapacity(t, vmName, 0, size)
	buf := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for off := int64(0); off < size; off += int64(len(buf)) {
		for i := 0; i+8 <= len(buf); i += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				buf[i+k] = byte(v >> (8 * k))
			}
		}
		sim.WriteDisk(t, vmName, 0, off, buf[:min(int64(len(buf)), size-off)])
	}
	flatURL := "https://" + sim.Host + "/folder/" + vmName + "/disk1-flat.vmdk?dcPath=DC0&dsName=LocalDS_0"
	const rounds = 3
	var plain, ours, chunked time.Duration
	for r := 0; r < rounds; r++ {
		d := plainDownload(t, sim, flatURL, size, 4)
		if plain == 0 || d < plain {
			plain = d
		}
		d = plainChunked(t, sim, flatURL, size, 4)
		if chunked == 0 || d < chunked {
			chunked = d
		}
		d = sessionRead(t, sim, size, 4)
		if ours == 0 || d < ours {
			ours = d
		}
	}
	mibs := func(d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }
	fmt.Printf("\n### vSphere network mode vs plain parallel HTTPS download from the simulator (%d MiB flat disk, best of %d)\n\n", size>>20, rounds)
	fmt.Printf("| read path | MiB/s | vs plain download |\n| --- | ---: | ---: |\n")
	fmt.Printf("| plain HTTPS download, 4 connections, one ranged GET each | %.0f | 1.00 |\n", mibs(plain))
	fmt.Printf("| plain HTTPS, 4 connections, 4 MiB ranged GETs | %.0f | %.2f |\n", mibs(chunked), plain.Seconds()/chunked.Seconds())
	fmt.Printf("| holdfast nbd transport: 4 workers × 4 MiB reads, one ranged GET each (reads of 8 MiB and more are split in up to 4) | %.0f | %.2f |\n", mibs(ours), plain.Seconds()/ours.Seconds())
}

// plainDownload reads the file in n contiguous parts over n connections.
func plainDownload(t *testing.T, sim *vcsim.Sim, u string, size int64, n int) time.Duration {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.RootCAs}, MaxIdleConnsPerHost: n}}
	defer hc.CloseIdleConnections()
	start := clock.Real().Now()
	var wg sync.WaitGroup
	part := size / int64(n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", int64(i)*part, int64(i+1)*part-1))
			res, err := hc.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			if n, err := io.Copy(io.Discard, res.Body); err != nil || n != part {
				errs[i] = fmt.Errorf("read %d of %d: %v", n, part, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return clock.Real().Since(start)
}

// plainChunked reads the file in 4 MiB ranged GETs over n connections.
func plainChunked(t *testing.T, sim *vcsim.Sim, u string, size int64, n int) time.Duration {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.RootCAs}, MaxIdleConnsPerHost: n}}
	defer hc.CloseIdleConnections()
	start := clock.Real().Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				off := next.Add(4<<20) - 4<<20
				if off >= size {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, min(off+4<<20, size)-1))
				res, err := hc.Do(req)
				if err != nil {
					errs[i] = err
					return
				}
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return clock.Real().Since(start)
}

// sessionRead reads the whole disk of a session as the pipeline does.
func sessionRead(t *testing.T, sim *vcsim.Sim, size int64, workers int) time.Duration {
	t.Helper()
	ctx := context.Background()
	o := options(t, sim)
	o.Connections = 4
	s, err := vsphere.Prepare(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseNow(t, s)
	d := s.Disks[0]
	start := clock.Real().Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = readChunks(d, &next, size)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return clock.Real().Since(start)
}

func readChunks(d source.Disk, next *atomic.Int64, size int64) error {
	buf := make([]byte, 4<<20)
	for {
		off := next.Add(int64(len(buf))) - int64(len(buf))
		if off >= size {
			return nil
		}
		n := min(int64(len(buf)), size-off)
		if _, err := d.ReadAt(buf[:n], off); err != nil {
			return err
		}
	}
}

func releaseNow(t *testing.T, s *vsphere.Session) {
	if err := s.Release(context.Background(), true); err != nil {
		t.Error(err)
	}
}
