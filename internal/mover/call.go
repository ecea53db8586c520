package mover

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast-backup/holdfast/internal/retry"
)

// RetryPolicy governs retries of failed requests: network errors (the
// connection dropped, timed out or was refused) and 502, 503 and 504
// replies. Other errors are final. Zero fields mean 12 attempts, a first
// backoff of 100 ms and a cap of 10 s (about a minute over 12 attempts).
type RetryPolicy = retry.Policy

var defaultRetry = RetryPolicy{Attempts: 12, Initial: 100 * time.Millisecond, Max: 10 * time.Second}

// call is one request.
type call struct {
	method string
	path   string // relative to the repository's base URL
	body   []byte // nil: no body
	ctype  string
	limit  int64 // largest reply body accepted
	// timeout bounds one attempt; 0: the client's RequestTimeout.
	timeout time.Duration
	// resumed, if set, is asked before each retry whether the previous,
	// interrupted attempt took effect; true ends the call successfully.
	resumed func(ctx context.Context) (bool, error)
	// reply, if set, sees the headers of the successful attempt's reply.
	reply func(h http.Header)
	// ref, if set, counts the users of a pooled body: each attempt's
	// transport holds it until it closes the request body.
	ref *bodyRef
}

// bodyRef counts the holders of a pooled request body; the last one to let
// go gives the buffer back. The transport may read (and close) a request
// body after the round trip returned, so the caller cannot simply recycle
// the buffer when do returns.
type bodyRef struct {
	n       atomic.Int32
	release func()
}

// newBodyRef returns a reference held once, by the caller.
func newBodyRef(release func()) *bodyRef {
	r := &bodyRef{release: release}
	r.n.Store(1)
	return r
}

func (r *bodyRef) acquire() { r.n.Add(1) }

func (r *bodyRef) done() {
	if r.n.Add(-1) == 0 {
		r.release()
	}
}

// refReader is one attempt's view of a pooled body.
type refReader struct {
	*bytes.Reader
	ref  *bodyRef
	once sync.Once
}

func (r *refReader) Close() error {
	r.once.Do(r.ref.done)
	return nil
}

// do runs a call, retrying per the policy. Every request of the protocol
// is idempotent, so a retry after an attempt of unknown outcome is safe.
func (c *Client) do(ctx context.Context, k call) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		b, err := c.once(ctx, k)
		if err == nil || attempt >= c.o.Retry.Attempts || !retryable(ctx, err) {
			return b, err
		}
		c.stats.retries.Add(1)
		c.log.Debug("mover: retrying", "method", k.method, "path", k.path, "attempt", attempt, "err", err)
		t := time.NewTimer(c.o.Retry.Backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
		if k.resumed != nil {
			if done, rerr := k.resumed(ctx); rerr != nil {
				return nil, rerr
			} else if done {
				return nil, nil
			}
		}
	}
}

// once sends one attempt.
func (c *Client) once(ctx context.Context, k call) ([]byte, error) {
	timeout := c.o.RequestTimeout
	if k.timeout > 0 {
		timeout = k.timeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	var rr *refReader
	switch {
	case k.ref != nil:
		k.ref.acquire()
		rr = &refReader{Reader: bytes.NewReader(k.body), ref: k.ref}
		body = rr
	case k.body != nil:
		body = bytes.NewReader(k.body)
	}
	req, err := http.NewRequestWithContext(actx, k.method, c.base+k.path, body)
	if err != nil {
		if rr != nil {
			rr.Close()
		}
		return nil, err
	}
	if rr != nil {
		req.ContentLength = int64(len(k.body))
	}
	if k.body != nil {
		req.Header.Set("Content-Type", k.ctype)
	}
	c.stats.requests.Add(1)
	c.stats.bytesSent.Add(int64(len(k.body)))
	hc := c.http
	if rr != nil && len(c.o.Uploads) > 0 {
		if i := int(c.next.Add(1)) % (len(c.o.Uploads) + 1); i > 0 {
			hc = c.o.Uploads[i-1]
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, statusError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, k.limit+1))
	c.stats.bytesReceived.Add(int64(len(b)))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > k.limit {
		return nil, fmt.Errorf("%w: reply to %s %s exceeds %d bytes", ErrProtocol, k.method, k.path, k.limit)
	}
	if k.reply != nil {
		k.reply(resp.Header)
	}
	return b, nil
}

// statusError decodes an error reply.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &StatusError{Status: resp.StatusCode}
	var er errorResponse
	if json.Unmarshal(b, &er) == nil && er.Error != "" {
		e.Code, e.Message = er.Code, er.Error
	} else {
		e.Message = strings.TrimSpace(string(b))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	return e
}

// retryable reports whether a failed attempt may be repeated: not when the
// caller gave up, not for replies other than 502/503/504, not for
// protocol or certificate errors (they would fail again).
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var record tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.Is(err, ErrProtocol), errors.As(err, &alert), errors.As(err, &verify),
		errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &record):
		return false
	case errors.As(err, &op) && op.Op == "remote error":
		return false // a TLS alert from the agent: certificate refused
	}
	return true
}

// counters are the client's traffic statistics.
type counters struct {
	requests, retries            atomic.Int64
	bytesSent, bytesReceived     atomic.Int64
	hasRequests, hasIDs, hasHits atomic.Int64
	chunksSent                   atomic.Int64
	sealNanos, uploadNanos       atomic.Int64
	targetNanos                  atomic.Int64
}

// ClientStats are a snapshot of a client's traffic.
type ClientStats struct {
	Requests      int64 // HTTP attempts
	Retries       int64
	BytesSent     int64 // request bodies
	BytesReceived int64 // reply bodies
	HasRequests   int64 // "has" round trips
	HasIDs        int64 // chunk IDs asked about
	CacheHits     int64 // TouchChunk calls answered without a round trip
	ChunksSent    int64

	// Stage timing, summed over concurrent workers (so it may exceed the
	// wall time), for telling which stage limits a backup.
	SealNanos   int64 // compressing and encrypting chunks here (SealChunk)
	UploadNanos int64 // chunk uploads, request to reply, retries included
	// TargetNanos is the agent's share of the chunk uploads: verifying and
	// storing them (including waiting for a verification slot), as the
	// agent reports in the Holdfast-Store-Micros reply header. Agents that
	// do not send the header add nothing.
	TargetNanos int64
}

// Stats returns the client's traffic so far.
func (c *Client) Stats() ClientStats {
	s := &c.stats
	return ClientStats{Requests: s.requests.Load(), Retries: s.retries.Load(), BytesSent: s.bytesSent.Load(),
		BytesReceived: s.bytesReceived.Load(), HasRequests: s.hasRequests.Load(), HasIDs: s.hasIDs.Load(),
		CacheHits: s.hasHits.Load(), ChunksSent: s.chunksSent.Load(),
		SealNanos: s.sealNanos.Load(), UploadNanos: s.uploadNanos.Load(), TargetNanos: s.targetNanos.Load()}
}
