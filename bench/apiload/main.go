// Command apiload measures the latency of holdfast server API requests
// under concurrent load, for bench/distributed.sh. It sends -n GET
// requests, cycling through -paths, from -c concurrent clients over one
// keep-alive HTTPS client (verifying the server with -ca, authenticating
// with the bearer -token; a plain http:// -server needs no -ca) and prints a JSON document with the latency
// percentiles overall and per path. Any response other than 200 counts as
// an error; the exit status is 1 if there were errors. With -interval each
// client paces itself as a polling console does: it starts a request every
// interval (at once when the previous one took longer); without it the
// clients send back to back (the server's saturation).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type stats struct {
	Path     string  `json:"path,omitempty"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Bytes    int64   `json:"bytes_per_response"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	Mean     float64 `json:"mean_ms"`
}

type report struct {
	Concurrency int      `json:"concurrency"`
	Interval    string   `json:"interval,omitempty"`
	Seconds     float64  `json:"seconds"`
	PerSecond   float64  `json:"requests_per_second"`
	Overall     stats    `json:"overall"`
	Paths       []stats  `json:"paths"`
	FirstErrors []string `json:"first_errors,omitempty"`
}

type sample struct {
	path  int
	d     time.Duration
	bytes int64
	err   string
}

func main() {
	server := flag.String("server", os.Getenv("HOLDFAST_SERVER"), "server URL")
	token := flag.String("token", os.Getenv("HOLDFAST_TOKEN"), "API token")
	caFile := flag.String("ca", os.Getenv("HOLDFAST_CA"), "CA certificate (PEM)")
	n := flag.Int("n", 2000, "requests in all")
	c := flag.Int("c", 8, "concurrent clients")
	warm := flag.Int("warmup", 40, "requests sent first and not counted")
	paths := flag.String("paths", "/api/v1/jobs,/api/v1/sessions,/api/v1/points,/api/v1/agents", "comma-separated paths, sent in turn")
	interval := flag.Duration("interval", 0, "each client starts a request every interval (0: back to back)")
	flag.Parse()
	if err := run(*server, *token, *caFile, *n, *c, *warm, *interval, strings.Split(*paths, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(1)
	}
}

func run(server, token, caFile string, n, c, warm int, interval time.Duration, paths []string) error {
	if server == "" || token == "" {
		return fmt.Errorf("need -server and -token")
	}
	pool := x509.NewCertPool()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no certificate", caFile)
		}
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        c,
		MaxIdleConnsPerHost: c,
		MaxConnsPerHost:     c,
		ForceAttemptHTTP2:   false,
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	base := strings.TrimRight(server, "/")
	get := func(p int) sample {
		s := sample{path: p}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+paths[p], nil)
		if err != nil {
			s.err = err.Error()
			return s
		}
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			s.d, s.err = time.Since(t0), err.Error()
			return s
		}
		s.bytes, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		s.d = time.Since(t0)
		if resp.StatusCode != http.StatusOK {
			s.err = fmt.Sprintf("GET %s: %s", paths[p], resp.Status)
		}
		return s
	}

	// Warm-up: open the connections (TLS handshakes) and the server's
	// caches; not counted.
	var wg sync.WaitGroup
	for i := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := i; k < warm; k += c {
				get(k % len(paths))
			}
		}()
	}
	wg.Wait()

	samples, elapsed := measure(n, c, interval, len(paths), get)

	rep := report{Concurrency: c, Seconds: elapsed.Seconds(), PerSecond: float64(n) / elapsed.Seconds()}
	if interval > 0 {
		rep.Interval = interval.String()
	}
	rep.Overall = summarize("", samples)
	for p, path := range paths {
		var sub []sample
		for _, s := range samples {
			if s.path == p {
				sub = append(sub, s)
			}
		}
		rep.Paths = append(rep.Paths, summarize(path, sub))
	}
	for _, s := range samples {
		if s.err != "" && len(rep.FirstErrors) < 5 {
			rep.FirstErrors = append(rep.FirstErrors, s.err)
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if rep.Overall.Errors > 0 {
		return fmt.Errorf("%d of %d requests failed", rep.Overall.Errors, n)
	}
	return nil
}

// measure sends n requests (get(path index)) from c clients, each
// starting one every interval (0: back to back).
func measure(n, c int, interval time.Duration, npaths int, get func(int) sample) ([]sample, time.Duration) {
	var wg sync.WaitGroup
	samples := make([]sample, n)
	var next atomic.Int64
	t0 := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			due := time.Now()
			for {
				k := int(next.Add(1)) - 1
				if k >= n {
					return
				}
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				due = time.Now().Add(interval)
				samples[k] = get(k % npaths)
			}
		}()
	}
	wg.Wait()
	return samples, time.Since(t0)
}

func summarize(path string, ss []sample) stats {
	st := stats{Path: path, Requests: len(ss)}
	if len(ss) == 0 {
		return st
	}
	ds := make([]time.Duration, 0, len(ss))
	var sum time.Duration
	for _, s := range ss {
		if s.err != "" {
			st.Errors++
		}
		st.Bytes += s.bytes
		ds = append(ds, s.d)
		sum += s.d
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	// Nearest-rank percentile.
	pct := func(p float64) float64 {
		i := int(p*float64(len(ds))+0.999999) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	st.P50, st.P90, st.P99 = pct(0.50), pct(0.90), pct(0.99)
	st.Max = ms(ds[len(ds)-1])
	st.Mean = ms(sum / time.Duration(len(ds)))
	st.Bytes /= int64(len(ss))
	return st
}
