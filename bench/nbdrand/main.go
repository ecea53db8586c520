// Command nbdrand measures random read latency through an NBD export with
// holdfast's own NBD client (internal/nbd), for bench/instant.sh. It first
// reads -region bytes from -offset sequentially (-warm-block requests) so the
// server's cache holds them, then makes -n random -block sized reads,
// aligned to -block, inside that region from -conns connections (each
// connection one reader, one request at a time), and prints the latency
// percentiles as JSON on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/nbd"
)

type result struct {
	URL          string  `json:"url"`
	ExportSize   int64   `json:"export_size"`
	RegionOffset int64   `json:"region_offset"`
	RegionBytes  int64   `json:"region_bytes"`
	WarmSeconds  float64 `json:"warm_seconds"`
	WarmMiBps    float64 `json:"warm_mib_per_s"`
	Block        int     `json:"block"`
	Reads        int     `json:"reads"`
	Conns        int     `json:"conns"`
	Seconds      float64 `json:"seconds"`
	IOPS         float64 `json:"iops"`
	P50ms        float64 `json:"p50_ms"`
	P90ms        float64 `json:"p90_ms"`
	P99ms        float64 `json:"p99_ms"`
	P999ms       float64 `json:"p999_ms"`
	Maxms        float64 `json:"max_ms"`
	Meanms       float64 `json:"mean_ms"`
}

func main() {
	url := flag.String("url", "", "NBD URL of the export (nbd://host:port/name)")
	offset := flag.Int64("offset", 0, "start of the region read")
	region := flag.Int64("region", 256<<20, "bytes of the region (0: the whole export)")
	block := flag.Int("block", 4096, "bytes per random read (reads are aligned to it)")
	n := flag.Int("n", 20000, "random reads in all")
	conns := flag.Int("conns", 1, "connections, one reader each")
	warmBlock := flag.Int("warm-block", 1<<20, "bytes per request of the warm-up pass")
	warm := flag.Bool("warm", true, "read the region once before measuring")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "nbdrand: -url is required")
		os.Exit(2)
	}
	r, err := run(*url, *offset, *region, *block, *n, *conns, *warmBlock, *warm, *seed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nbdrand:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(r)
}

func run(url string, offset, region int64, block, n, conns, warmBlock int, warm bool, seed uint64) (*result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if conns < 1 || block < 1 || n < 1 {
		return nil, fmt.Errorf("bad -conns, -block or -n")
	}
	opts := nbd.ClientOptions{RequestTimeout: time.Minute}
	clients := make([]*nbd.Client, conns)
	for i := range clients {
		c, err := nbd.Dial(ctx, url, opts)
		if err != nil {
			return nil, fmt.Errorf("connection %d: %w", i+1, err)
		}
		defer c.Close()
		clients[i] = c
	}
	size := clients[0].Size()
	if region <= 0 || offset+region > size {
		region = size - offset
	}
	blocks := region / int64(block)
	if blocks < 1 || offset%int64(block) != 0 {
		return nil, fmt.Errorf("region %d at %d holds no aligned %d-byte block", region, offset, block)
	}
	res := &result{URL: url, ExportSize: size, RegionOffset: offset, RegionBytes: region, Block: block, Reads: n, Conns: conns}

	if warm {
		// Sequential warm-up, split over the connections.
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, conns)
		per := (region/int64(conns) + int64(warmBlock) - 1) / int64(warmBlock) * int64(warmBlock)
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, warmBlock)
				start, end := offset+int64(i)*per, min(offset+int64(i+1)*per, offset+region)
				for off := start; off < end; off += int64(warmBlock) {
					m := min(int64(warmBlock), end-off)
					if _, err := c.ReadAtContext(ctx, buf[:m], off); err != nil {
						errs[i] = fmt.Errorf("warm-up read at %d: %w", off, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		res.WarmSeconds = time.Since(t0).Seconds()
		res.WarmMiBps = float64(region) / (1 << 20) / res.WarmSeconds
	}

	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	errs := make([]error, conns)
	t0 := time.Now()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			buf := make([]byte, block)
			for j := i; j < n; j += conns {
				off := offset + rng.Int64N(blocks)*int64(block)
				s := time.Now()
				if _, err := c.ReadAtContext(ctx, buf, off); err != nil {
					errs[i] = fmt.Errorf("read at %d: %w", off, err)
					return
				}
				lat[j] = time.Since(s)
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(t0).Seconds()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	res.IOPS = float64(n) / res.Seconds
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	pct := func(p float64) float64 {
		i := int(p*float64(n)+0.5) - 1
		i = max(0, min(i, n-1))
		return ms(lat[i])
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	res.P50ms, res.P90ms, res.P99ms, res.P999ms = pct(0.50), pct(0.90), pct(0.99), pct(0.999)
	res.Maxms = ms(lat[n-1])
	res.Meanms = ms(sum / time.Duration(n))
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
