// Command cutproxy is a TCP proxy that drops the link every N bytes, for
// bench/copy.sh (internal/testutil/cutproxy does the work). A small HTTP
// control endpoint answers GET /stats (JSON: connections, cuts, bytes_up,
// bytes_down), POST /reset (zero the counts) and POST /cut?bytes=N (a new
// budget; 0: never cut).
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"strconv"

	"github.com/holdfast-backup/holdfast/internal/testutil/cutproxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	control := flag.String("control", "127.0.0.1:0", "address of the control endpoint")
	target := flag.String("target", "", "HOST:PORT to forward to")
	perConn := flag.Bool("per-connection", false, "cut each connection after -cut bytes instead of the whole link")
	cut := flag.Int64("cut", 0, "bytes between cuts (0: never)")
	jitter := flag.Uint64("jitter-seed", 1, "draw each link budget from [cut/2, 3·cut/2] with this seed (0: exact budgets)")
	flag.Parse()
	if *target == "" {
		log.Fatal("-target: want HOST:PORT")
	}
	mode := cutproxy.ModeLink
	if *perConn {
		mode = cutproxy.ModeConn
	}
	p, err := cutproxy.Start(*listen, *target, mode, *cut)
	if err != nil {
		log.Fatal(err)
	}
	if *jitter != 0 {
		p.Jitter(*jitter)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(p.Stats())
	})
	mux.HandleFunc("POST /reset", func(http.ResponseWriter, *http.Request) { p.Reset() })
	mux.HandleFunc("POST /cut", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bytes=N", http.StatusBadRequest)
			return
		}
		p.SetCutAfter(n)
	})
	log.Printf("proxy %s -> %s", p.Addr(), *target)
	log.Fatal(http.ListenAndServe(*control, mux))
}
