package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/s3"
	"github.com/holdfast-backup/holdfast/internal/testutil/s3test"
)

// fault is what the flaky transport does to one request.
type fault int

const (
	pass        fault = iota
	slowDown          // answer 503 SlowDown without forwarding
	reset             // fail with a connection reset without forwarding
	lostAnswer        // forward, then lose the answer (the server did it)
	serverError       // answer 500 InternalError without forwarding
)

// flaky forwards requests to the real server, injecting the faults of
// its plan in turn (then passing everything).
type flaky struct {
	next http.RoundTripper
	mu   sync.Mutex
	plan []fault
	seen map[fault]int
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	ft := pass
	if len(f.plan) > 0 {
		ft, f.plan = f.plan[0], f.plan[1:]
	}
	f.seen[ft]++
	f.mu.Unlock()
	switch ft {
	case slowDown, serverError:
		code, status := "SlowDown", http.StatusServiceUnavailable
		if ft == serverError {
			code, status = "InternalError", http.StatusInternalServerError
		}
		body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>injected</Message></Error>`
		return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: r}, nil
	case reset:
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, &netErr{syscall.ECONNRESET}
	case lostAnswer:
		resp, err := f.next.RoundTrip(r)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, &netErr{syscall.ECONNRESET}
	}
	return f.next.RoundTrip(r)
}

type netErr struct{ errno syscall.Errno }

func (e *netErr) Error() string   { return "read tcp: " + e.errno.Error() }
func (e *netErr) Unwrap() error   { return e.errno }
func (e *netErr) Timeout() bool   { return false }
func (e *netErr) Temporary() bool { return true }

// TestFaults runs a backup-like workload through 503s, 500s, connection
// resets and answers lost after the server acted: every operation is
// retried and idempotent, so everything ends as if nothing happened.
func TestFaults(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	var plan []fault
	for i := 0; i < 12; i++ {
		plan = append(plan, slowDown, pass, reset, lostAnswer, pass, serverError, pass)
	}
	fl := &flaky{next: http.DefaultTransport, plan: plan, seen: map[fault]int{}}
	tg, err := s3.ParseURL(srv.URL("faults", "r"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s3.New(tg, s3.Options{Getenv: srv.Getenv, PathStyle: true, Transport: fl})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureBucket(ctx, false); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("chunks/%02x/%064x", i, i)
		data := bytes.Repeat([]byte{byte(i)}, 1000+i)
		if err := b.Save(ctx, name, data); err != nil {
			t.Fatalf("save %s: %v", name, err)
		}
		want[name] = data
	}
	if err := b.Rename(ctx, "chunks/00/"+fmt.Sprintf("%064x", 0), "trash/zero"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	want["trash/zero"] = want["chunks/00/"+fmt.Sprintf("%064x", 0)]
	delete(want, "chunks/00/"+fmt.Sprintf("%064x", 0))
	if err := b.Remove(ctx, "trash/zero"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	delete(want, "trash/zero")
	if err := b.Touch(ctx, "chunks/01/"+fmt.Sprintf("%064x", 1)); err != nil {
		t.Fatalf("touch: %v", err)
	}
	got := map[string]int64{}
	if err := b.List(ctx, "", func(fi storage.FileInfo) error { got[fi.Name] = fi.Size; return nil }); err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("listed %v, want %d files", got, len(want))
	}
	for name, data := range want {
		b2, err := b.Load(ctx, name)
		if err != nil || !bytes.Equal(b2, data) {
			t.Errorf("load %s: %d bytes, %v", name, len(b2), err)
		}
	}
	for _, f := range []fault{slowDown, reset, lostAnswer, serverError} {
		if fl.seen[f] == 0 {
			t.Errorf("fault %d never injected", f)
		}
	}
	if _, err := b.Load(ctx, "missing"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("load missing: %v", err)
	}
}
