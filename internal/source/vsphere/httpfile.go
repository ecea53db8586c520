package vsphere

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/source/file"
)

// ErrDatastoreHTTP is matched by the error of a datastore file the host's
// HTTPS datastore access refused or answered wrongly.
var ErrDatastoreHTTP = errors.New("datastore HTTP access")

// httpOptions tune datastore file reads.
type httpOptions struct {
	// Connections is how many ranged GETs one large ReadAt is split into.
	Connections int
	// Retries is how often a failed request is retried (with backoff).
	Retries int
	// Backoff is the first retry's wait; it doubles per retry.
	Backoff time.Duration
	Clock   clock.Clock
}

// splitMin is the smallest part of a ReadAt split across connections:
// each ranged GET costs a round trip and the server's set-up, and the
// pipeline already reads chunks in parallel, so only reads of several
// MiB are split (measured against the simulator: 1 MiB parts read 20-40 %
// slower than whole 4 MiB reads; bench/vsphere.sh).
const splitMin = 4 << 20

var _ file.VMDKFiles = (*datastoreFiles)(nil)

// datastoreFiles opens the files of one directory of a datastore over the
// host's HTTPS datastore access: GET /folder/DIR/NAME?dcPath=DC&dsName=DS
// with Range headers, through the logged-in session's HTTP client (its TLS
// settings and session cookie).
type datastoreFiles struct {
	hc   *http.Client
	base url.URL // scheme and host of the endpoint
	dc   string
	ds   string
	dir  string
	o    httpOptions
}

// newDatastoreFiles reads the directory of the file p on datacenter dc.
// Its HTTP client shares the session's TLS settings and cookie but keeps
// its own pool of connections, enough for parallel reads; closeIdle
// releases them.
func newDatastoreFiles(c *Client, dc string, p DatastorePath, o httpOptions) *datastoreFiles {
	if o.Connections <= 0 {
		o.Connections = 1
	}
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Millisecond
	}
	o.Clock = clock.Or(o.Clock)
	sc := c.Client.Client
	t := sc.DefaultTransport().Clone()
	t.MaxIdleConnsPerHost = maxIdlePerHost
	u := c.URL()
	return &datastoreFiles{hc: &http.Client{Transport: t, Jar: sc.Jar}, base: url.URL{Scheme: u.Scheme, Host: u.Host},
		dc: dc, ds: p.Datastore, dir: p.Dir(), o: o}
}

// maxIdlePerHost keeps the connections of parallel reads (the pipeline's
// workers, each read split in Connections) open between requests.
const maxIdlePerHost = 64

// closeIdle closes the client's idle connections.
func (f *datastoreFiles) closeIdle() { f.hc.CloseIdleConnections() }

// fileURL is the /folder URL of name in the directory.
func (f *datastoreFiles) fileURL(name string) string {
	p := name
	if f.dir != "" {
		p = f.dir + "/" + name
	}
	u := f.base
	u.Path = "/folder/" + p
	u.RawQuery = url.Values{"dcPath": {f.dc}, "dsName": {f.ds}}.Encode()
	return u.String()
}

// OpenFile opens name, a file at or below the directory (file.OpenVMDK
// passes only such names; checked here all the same). The context bounds
// every read of the file.
func (f *datastoreFiles) OpenFile(ctx context.Context, name string) (file.ExtentFile, error) {
	if !filepath.IsLocal(name) || strings.ContainsRune(name, '\\') {
		return nil, fmt.Errorf("%w: file name %q is not in the disk's directory", ErrDatastoreHTTP, name)
	}
	hf := &httpFile{ctx: ctx, hc: f.hc, url: f.fileURL(name), name: "[" + f.ds + "] " + joinDir(f.dir, name), o: f.o}
	size, err := hf.probeSize()
	if err != nil {
		return nil, err
	}
	hf.size = size
	return hf, nil
}

func joinDir(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// httpFile is one datastore file read with ranged GETs. ReadAt is safe
// for concurrent use; it reads straight into the caller's buffer, so its
// memory does not grow with the file.
type httpFile struct {
	ctx  context.Context
	hc   *http.Client
	url  string
	name string
	size int64
	o    httpOptions
}

// Size is the file's length in bytes.
func (h *httpFile) Size() int64 { return h.size }

// Close releases nothing: every request closes its own response.
func (h *httpFile) Close() error { return nil }

// ReadAt reads len(p) bytes at off; a large read is split into up to
// Connections ranged requests run in parallel.
func (h *httpFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset", h.name)
	}
	if off >= h.size {
		return 0, io.EOF
	}
	n := len(p)
	if rest := h.size - off; int64(n) > rest {
		n = int(rest)
	}
	if err := h.readSplit(p[:n], off); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *httpFile) readSplit(p []byte, off int64) error {
	parts := min(h.o.Connections, len(p)/splitMin)
	if parts <= 1 {
		return h.readRange(p, off)
	}
	step := (len(p) + parts - 1) / parts
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i, a := 0, 0; a < len(p); i, a = i+1, a+step {
		b := min(a+step, len(p))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.readRange(p[a:b], off+int64(a))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readRange fills p from off with one ranged GET, retried with backoff
// when the request fails for a reason that may pass.
func (h *httpFile) readRange(p []byte, off int64) error {
	return h.retry(fmt.Sprintf("read %s at %d (%d bytes)", h.name, off, len(p)), func() error { return h.get(p, off) })
}

// permanentError is a refusal retrying does not change (4xx).
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func (h *httpFile) get(p []byte, off int64) error {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return permanentError{err}
	}
	end := off + int64(len(p)) - 1
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(end, 10))
	res, err := h.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if err := statusError(res, http.StatusPartialContent); err != nil {
		return err
	}
	if first, last, _, ok := parseContentRange(res.Header.Get("Content-Range")); !ok || first != off || last != end {
		return fmt.Errorf("answered range %q, asked %d-%d", res.Header.Get("Content-Range"), off, end)
	}
	if _, err := io.ReadFull(res.Body, p); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

// probeSize asks for the first byte: the Content-Range gives the size.
func (h *httpFile) probeSize() (int64, error) {
	var size int64
	err := h.retry("open "+h.name, func() error {
		req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, h.url, nil)
		if err != nil {
			return permanentError{err}
		}
		req.Header.Set("Range", "bytes=0-0")
		res, err := h.hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode == http.StatusRequestedRangeNotSatisfiable { // an empty file
			if _, _, n, ok := parseContentRange(res.Header.Get("Content-Range")); ok && n == 0 {
				size = 0
				return nil
			}
		}
		if err := statusError(res, http.StatusPartialContent); err != nil {
			return err
		}
		_, _, n, ok := parseContentRange(res.Header.Get("Content-Range"))
		if !ok || n < 0 {
			return permanentError{fmt.Errorf("no size in the answer's Content-Range %q", res.Header.Get("Content-Range"))}
		}
		size = n
		return nil
	})
	return size, err
}

// retry runs one request function with the file's retry policy: a
// failure that may pass is retried Retries times, waiting Backoff, then
// twice as long each time.
func (h *httpFile) retry(what string, f func() error) error {
	wait := h.o.Backoff
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		var perm permanentError
		if h.ctx.Err() != nil {
			return h.ctx.Err()
		}
		if errors.As(err, &perm) || attempt >= h.o.Retries {
			return fmt.Errorf("%w: %s: %w", ErrDatastoreHTTP, what, err)
		}
		if err := h.o.Clock.Sleep(h.ctx, wait); err != nil {
			return err
		}
		wait *= 2
	}
}

// statusError explains an answer other than want; a 4xx is permanent.
func statusError(res *http.Response, want int) error {
	if res.StatusCode == want {
		return nil
	}
	err := fmt.Errorf("HTTP %s", res.Status)
	switch res.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return permanentError{fmt.Errorf("%w (the session may not read the datastore)", err)}
	case http.StatusNotFound:
		return permanentError{fmt.Errorf("%w (no such file)", err)}
	case http.StatusOK:
		return permanentError{fmt.Errorf("%w: the server ignored the Range header", err)}
	}
	if res.StatusCode >= 400 && res.StatusCode < 500 {
		return permanentError{err}
	}
	return err
}

// parseContentRange reads "bytes FIRST-LAST/SIZE" or "bytes */SIZE";
// SIZE may be "*" (-1).
func parseContentRange(s string) (first, last, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, total, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	size = -1
	if total != "*" {
		n, err := strconv.ParseInt(total, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, 0, false
		}
		size = n
	}
	if rng == "*" {
		return -1, -1, size, true
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first || (size >= 0 && last >= size) {
		return 0, 0, 0, false
	}
	return first, last, size, true
}
