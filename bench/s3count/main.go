// Command s3count is a counting reverse proxy in front of an S3 server,
// for bench/s3.sh: it forwards every request and counts them by S3
// operation (GET, HEAD, PUT, COPY, DELETE, LIST, other). GET
// /__counts answers the counts as JSON; POST /__counts/reset zeroes them.
// POST /__latency?ms=N delays every later request by N ms before it is
// forwarded (0: none), to emulate an object store's first-byte latency
// (tens of ms on AWS S3) on loopback.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"
)

type counter struct {
	mu    sync.Mutex
	n     map[string]int64
	in    int64 // request body bytes
	delay time.Duration
}

// op names a request's S3 operation.
func op(r *http.Request) string {
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		if q.Has("list-type") || q.Has("prefix") || q.Has("delimiter") || q.Has("versions") {
			return "LIST"
		}
		return "GET"
	case http.MethodPut:
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			return "COPY"
		}
		return "PUT"
	case http.MethodHead, http.MethodDelete, http.MethodPost:
		return r.Method
	}
	return "OTHER"
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	target := flag.String("target", "", "S3 server URL (http://HOST:PORT)")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		log.Fatalf("-target: want http://HOST:PORT")
	}
	c := &counter{n: map[string]int64{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /__counts", func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		out := map[string]int64{"bytes_in": c.in}
		var total int64
		for k, v := range c.n {
			out[k] = v
			total += v
		}
		out["TOTAL"] = total
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /__counts/reset", func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		c.n, c.in = map[string]int64{}, 0
		c.mu.Unlock()
	})
	mux.HandleFunc("POST /__latency", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 {
			http.Error(w, "want ?ms=N", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.delay = time.Duration(ms) * time.Millisecond
		c.mu.Unlock()
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n[op(r)]++
		if r.ContentLength > 0 {
			c.in += r.ContentLength
		}
		delay := c.delay
		c.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	})
	log.Fatal(http.ListenAndServe(*listen, mux))
}
