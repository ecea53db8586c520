package mover

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
)

// peerTLS is a client TLS configuration with a client certificate of its
// own (another proxy, another peer ID on the agent).
func (e *env) peerTLS(t *testing.T, name string) *tls.Config {
	t.Helper()
	cfg := e.tls.Clone()
	cfg.Certificates = []tls.Certificate{e.ca.clientCert(t, name)}
	return cfg
}

// dialPeer connects a client with its own client certificate. Without
// cleanup the test closes it.
func (e *env) dialPeer(t *testing.T, name string, shared, cleanup bool) *Client {
	t.Helper()
	c, err := Dial(context.Background(), ClientOptions{URL: e.ts.URL, Repo: "main", Password: []byte(password),
		HTTP: NewHTTPClient(e.peerTLS(t, name)), Shared: shared,
		Retry: RetryPolicy{Initial: 5 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if cleanup {
		t.Cleanup(func() { c.Close() })
	}
	return c
}

// requestAs sends a raw request with the given TLS configuration and
// returns the status, the error code (if any) and the body.
func (e *env) requestAs(t *testing.T, cfg *tls.Config, method, path string, body []byte) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := NewHTTPClient(cfg).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var er errorResponse
	_ = json.Unmarshal(b, &er)
	return resp.StatusCode, er.Code, b
}

// startSessionAs opens a session with a raw request.
func (e *env) startSessionAs(t *testing.T, cfg *tls.Config, shared bool) string {
	t.Helper()
	body, _ := json.Marshal(sessionRequest{RequestID: randomID(), Kind: repo.LockShared, Shared: shared})
	st, _, b := e.requestAs(t, cfg, http.MethodPost, APIPrefix+"main/sessions", body)
	var sr sessionResponse
	if st != http.StatusCreated || json.Unmarshal(b, &sr) != nil || sr.Shared != shared {
		t.Fatalf("start session: %d %s", st, b)
	}
	return sr.Session
}

// backupDisk backs up one disk of a point through sink (no commit) and
// returns its manifest entry.
func backupDisk(ctx context.Context, sink repo.Sink, point string, i int, d source.Disk) (repo.DiskManifest, error) {
	ix, st, err := pipeline.BackupDisk(ctx, sink, pipeline.DiskJob{Disk: d, ChunkSize: cs}, pipeline.Options{Workers: 3})
	if err != nil {
		return repo.DiskManifest{}, err
	}
	h, err := sink.SaveIndex(ctx, point, i, ix)
	if err != nil {
		return repo.DiskManifest{}, err
	}
	info := d.Describe()
	return repo.DiskManifest{Index: i, Size: ix.DiskSize, ChunkSize: ix.ChunkSize, Format: info.Format,
		Location: info.Location, IndexHash: h, Chunks: len(ix.Entries), Stats: st}, nil
}

// TestSharedSessionTwoProxies: one VM, two disks, two proxies with
// different certificates, one session and one restore point.
func TestSharedSessionTwoProxies(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{})
	owner := e.dial(t, e.ts.URL, func(o *ClientOptions) { o.Shared = true })
	helper := e.dialPeer(t, "proxy 2", false, true)

	if owner.SessionID() != "" {
		t.Fatal("session ID before Lock")
	}
	lock, err := owner.Lock(ctx, repo.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Release() }()
	sid := owner.SessionID()
	if !hex32Pattern.MatchString(sid) {
		t.Fatalf("session ID %q", sid)
	}
	if err := helper.Attach(sid); err != nil {
		t.Fatal(err)
	}
	if helper.SessionID() != sid {
		t.Fatalf("attached session ID %q, want %q", helper.SessionID(), sid)
	}

	point := owner.NewPointID()
	disks := []*memdisk.Disk{memdisk.Standard(cs), memdisk.Random(7*cs+500, 9)}
	clients := []*Client{owner, helper}
	dms := make([]repo.DiskManifest, len(disks))
	errs := make([]error, len(disks))
	var wg sync.WaitGroup
	for i := range disks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dms[i], errs[i] = backupDisk(ctx, clients[i], point, i, disks[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := helper.Stats().ChunksSent; n != 8 {
		t.Errorf("attached client sent %d chunks, want 8", n)
	}
	m := &repo.Manifest{ID: point, VM: "vm1", Time: time.Now().UTC(), Disks: dms}
	if err := helper.CommitPoint(ctx, m); !errors.Is(err, ErrNotSessionOwner) {
		t.Fatalf("commit by the attached client: %v", err)
	}
	if err := owner.CommitPoint(ctx, m); err != nil {
		t.Fatal(err)
	}
	helper.Detach()
	if err := lock.Release(); err != nil {
		t.Fatal(err)
	}
	if locks, _ := e.repo.ActiveLocks(ctx); len(locks) != 0 {
		t.Errorf("locks after commit: %+v", locks)
	}

	ms, err := owner.ListPoints(ctx)
	if err != nil || len(ms) != 1 || ms[0].ID != point || len(ms[0].Disks) != 2 {
		t.Fatalf("points: %v %+v", err, ms)
	}
	for i, d := range disks {
		for _, c := range clients {
			if got := restoreDisk(t, c, ms[0], i); !bytes.Equal(got, d.Data) {
				t.Fatalf("disk %d restored differs", i)
			}
		}
	}
	if e.srv.started.Load() != 1 {
		t.Errorf("sessions started %d, want 1", e.srv.started.Load())
	}
}

// TestSharedSessionOwnerRules checks every session endpoint for a foreign
// peer, on a shared and on a private session, with raw requests.
func TestSharedSessionOwnerRules(t *testing.T) {
	e := newEnv(t, nil, ServerOptions{})
	c := e.dial(t, e.ts.URL, nil)
	other := e.peerTLS(t, "other proxy")
	data := bytes.Repeat([]byte("shared "), 3000)
	id := c.NewHasher().Sum(data)
	sealed, err := c.keys.SealChunk(id, data)
	if err != nil {
		t.Fatal(err)
	}
	blob := bytes.Clone(sealed)
	point := c.NewPointID()
	ix := &repo.Index{DiskSize: cs, ChunkSize: cs, Entries: []repo.IndexEntry{{N: 0, ID: id}}}
	plainIndex, _ := ix.MarshalBinary()
	indexHash := c.NewHasher().Sum(plainIndex)
	manifest, _ := json.Marshal(repo.Manifest{Version: 1, ID: point, VM: "vm1", Time: time.Now().UTC(),
		Disks: []repo.DiskManifest{{Index: 0, Size: cs, ChunkSize: cs, IndexHash: indexHash, Chunks: 1}}})

	type step struct {
		name, method, path string
		body               []byte
		status             int
		code               string
	}
	for _, tc := range []struct {
		name   string
		shared bool
		steps  []step
	}{
		{"shared", true, []step{
			{"has", "POST", "has", id[:], 200, ""},
			{"chunk", "PUT", "chunks/" + id.String(), blob, 201, ""},
			{"index", "PUT", "points/" + point + "/disks/0/index", plainIndex, 200, ""},
			{"keepalive", "POST", "keepalive", nil, 204, ""},
			{"commit", "POST", "commit", manifest, 403, codeNotOwner},
			{"abort", "DELETE", "", nil, 403, codeNotOwner},
		}},
		{"private", false, []step{
			{"has", "POST", "has", id[:], 404, codeSessionNotFound},
			{"chunk", "PUT", "chunks/" + id.String(), blob, 404, codeSessionNotFound},
			{"index", "PUT", "points/" + point + "/disks/0/index", plainIndex, 404, codeSessionNotFound},
			{"keepalive", "POST", "keepalive", nil, 404, codeSessionNotFound},
			{"commit", "POST", "commit", manifest, 404, codeSessionNotFound},
			{"abort", "DELETE", "", nil, 404, codeSessionNotFound},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid := e.startSessionAs(t, e.tls, tc.shared)
			base := APIPrefix + "main/sessions/" + sid
			for _, s := range tc.steps {
				path := base
				if s.path != "" {
					path += "/" + s.path
				}
				st, code, b := e.requestAs(t, other, s.method, path, s.body)
				if st != s.status || code != s.code {
					t.Errorf("foreign %s: %d %q %s, want %d %q", s.name, st, code, b, s.status, s.code)
				}
			}
			// The session is intact for its owner, which commits the
			// index the foreign peer uploaded into a shared session.
			if st, _, b := e.request(t, "POST", base+"/keepalive", nil); st != 204 {
				t.Fatalf("owner keepalive: %d %s", st, b)
			}
			if tc.shared {
				if st, _, b := e.request(t, "POST", base+"/commit", manifest); st != 200 {
					t.Fatalf("owner commit: %d %s", st, b)
				}
			}
			if st, _, b := e.request(t, "DELETE", base, nil); st != 204 {
				t.Fatalf("owner abort: %d %s", st, b)
			}
			if st, code, _ := e.requestAs(t, other, "POST", base+"/keepalive", nil); st != 404 || code != codeSessionNotFound {
				t.Errorf("foreign keepalive after the end: %d %q", st, code)
			}
		})
	}
	if _, err := e.repo.LoadManifest(context.Background(), point); err != nil {
		t.Fatalf("point of the shared session: %v", err)
	}
}

// TestSharedAttachUnknownSession: Attach sends nothing; the first call on
// a session the agent does not share with the client fails.
func TestSharedAttachUnknownSession(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{})
	owner := e.dial(t, e.ts.URL, nil) // private sessions
	lock, err := owner.Lock(ctx, repo.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Release() }()
	data := bytes.Repeat([]byte{3}, cs)
	id := owner.NewHasher().Sum(data)
	calls := map[string]func(c *Client) error{
		"touch":    func(c *Client) error { _, err := c.TouchChunk(ctx, id); return err },
		"prefetch": func(c *Client) error { return c.Prefetch(ctx, []repo.ChunkID{id}) },
		"put":      func(c *Client) error { _, err := c.PutChunk(ctx, id, data); return err },
		"index": func(c *Client) error {
			_, err := c.SaveIndex(ctx, c.NewPointID(), 0, &repo.Index{DiskSize: cs, ChunkSize: cs})
			return err
		},
	}
	for _, tc := range []struct{ name, sid string }{
		{"unknown", randomID()},
		{"private session of another client", owner.SessionID()},
	} {
		for name, fn := range calls {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				c := e.dialPeer(t, "proxy 2", false, true)
				if err := c.Attach(tc.sid); err != nil {
					t.Fatal(err)
				}
				if err := fn(c); !errors.Is(err, ErrSessionNotFound) {
					t.Fatalf("%s on an unknown session: %v", name, err)
				}
			})
		}
	}
	// The owner's private session is untouched.
	if _, err := owner.PutChunk(ctx, id, data); err != nil {
		t.Fatal(err)
	}
}

func TestSharedAttachValidation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{})
	c := e.dial(t, e.ts.URL, nil)
	for _, id := range []string{"", "xyz", strings.Repeat("a", 31), strings.Repeat("a", 33),
		strings.ToUpper(randomID()), randomID()[:30] + "g0", "../" + randomID()} {
		if err := c.Attach(id); err == nil {
			t.Errorf("attach %q succeeded", id)
		}
	}
	if c.SessionID() != "" {
		t.Fatal("session after refused attaches")
	}
	sid := randomID()
	if err := c.Attach(sid); err != nil {
		t.Fatal(err)
	}
	if err := c.Attach(randomID()); err == nil {
		t.Error("second attach succeeded")
	}
	if _, err := c.Lock(ctx, repo.LockShared); err == nil {
		t.Error("lock while attached succeeded")
	}
	err := c.CommitPoint(ctx, &repo.Manifest{ID: c.NewPointID(), VM: "vm1", Time: time.Now()})
	if !errors.Is(err, ErrNotSessionOwner) {
		t.Errorf("commit while attached: %v", err)
	}
	c.Detach()
	if c.SessionID() != "" {
		t.Fatal("session after Detach")
	}
	if _, err := c.TouchChunk(ctx, repo.ChunkID{1}); !errors.Is(err, ErrNoSession) {
		t.Errorf("touch after Detach: %v", err)
	}
	// With a session of its own: no attach, and Detach leaves it alone.
	lock, err := c.Lock(ctx, repo.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Release() }()
	own := c.SessionID()
	if err := c.Attach(sid); err == nil {
		t.Error("attach during an own session succeeded")
	}
	c.Detach()
	if c.SessionID() != own {
		t.Error("Detach dropped the client's own session")
	}
}

// TestSharedDetachLeavesSessionOpen: neither Detach nor Close of an
// attached client ends the session; the owner continues and commits.
func TestSharedDetachLeavesSessionOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(c *Client)
	}{
		{"detach", func(c *Client) { c.Detach() }},
		{"close", func(c *Client) { c.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, nil, ServerOptions{})
			owner := e.dial(t, e.ts.URL, func(o *ClientOptions) { o.Shared = true })
			lock, err := owner.Lock(ctx, repo.LockShared)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = lock.Release() }()
			helper := e.dialPeer(t, "proxy 2", false, false)
			if err := helper.Attach(owner.SessionID()); err != nil {
				helper.Close()
				t.Fatal(err)
			}
			point := owner.NewPointID()
			d1, err := backupDisk(ctx, helper, point, 1, memdisk.Random(3*cs, 4))
			if err != nil {
				helper.Close()
				t.Fatal(err)
			}
			tc.end(helper)
			if tc.name == "detach" {
				if _, err := helper.TouchChunk(ctx, repo.ChunkID{1}); !errors.Is(err, ErrNoSession) {
					t.Errorf("touch after Detach: %v", err)
				}
				helper.Close()
			}
			e.srv.mu.Lock()
			n := len(e.srv.sessions)
			e.srv.mu.Unlock()
			if locks, _ := e.repo.ActiveLocks(ctx); n != 1 || len(locks) != 1 {
				t.Fatalf("after %s: %d sessions, %d locks", tc.name, n, len(locks))
			}
			d0, err := backupDisk(ctx, owner, point, 0, memdisk.Standard(cs))
			if err != nil {
				t.Fatal(err)
			}
			m := &repo.Manifest{ID: point, VM: "vm1", Time: time.Now().UTC(), Disks: []repo.DiskManifest{d0, d1}}
			if err := owner.CommitPoint(ctx, m); err != nil {
				t.Fatal(err)
			}
			if _, err := e.repo.LoadManifest(ctx, point); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSharedRequiresAgentSupport: a Shared client refuses a session the
// agent did not mark shared (an older agent) and ends it.
func TestSharedRequiresAgentSupport(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{})
	// An "old agent": drops the shared flag from session requests.
	old := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/sessions") {
			b, _ := io.ReadAll(r.Body)
			var req sessionRequest
			_ = json.Unmarshal(b, &req)
			req.Shared = false
			b, _ = json.Marshal(req)
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.ContentLength = int64(len(b))
		}
		e.srv.ServeHTTP(w, r)
	})
	ts := httptest.NewUnstartedServer(old)
	ts.EnableHTTP2 = true
	ts.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: e.ca.pool}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	cfg := &tls.Config{RootCAs: roots, Certificates: e.tls.Certificates}
	c := e.dial(t, ts.URL, func(o *ClientOptions) { o.Shared = true; o.HTTP = NewHTTPClient(cfg) })
	if _, err := c.Lock(ctx, repo.LockShared); err == nil || !strings.Contains(err.Error(), "shared sessions") {
		t.Fatalf("lock on an agent without shared sessions: %v", err)
	}
	e.srv.mu.Lock()
	n := len(e.srv.sessions)
	e.srv.mu.Unlock()
	if locks, _ := e.repo.ActiveLocks(ctx); n != 0 || len(locks) != 0 {
		t.Fatalf("refused shared session left %d sessions, %d locks", n, len(locks))
	}
}

func TestStageTimingStats(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{})
	c := e.dial(t, e.ts.URL, nil)
	if s := c.Stats(); s.SealNanos != 0 || s.UploadNanos != 0 || s.TargetNanos != 0 {
		t.Fatalf("timing before any upload: %+v", s)
	}
	lock, err := c.Lock(ctx, repo.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Release() }()
	prev := c.Stats()
	for i := 0; i < 3; i++ {
		data := bytes.Repeat([]byte{byte(i + 1), 'x'}, cs/2)
		if _, err := c.PutChunk(ctx, c.NewHasher().Sum(data), data); err != nil {
			t.Fatal(err)
		}
		s := c.Stats()
		if s.SealNanos <= prev.SealNanos || s.UploadNanos <= prev.UploadNanos || s.TargetNanos < prev.TargetNanos {
			t.Fatalf("upload %d: timing did not grow: %+v after %+v", i, s, prev)
		}
		prev = s
	}
	if prev.TargetNanos <= 0 || prev.TargetNanos > prev.UploadNanos {
		t.Errorf("target time %d of upload time %d", prev.TargetNanos, prev.UploadNanos)
	}
}

func TestParseStoreMicros(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"1500", 1500 * time.Microsecond, true},
		{"3600000000", time.Hour, true},
		{"3600000001", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"+5", 0, false},
		{"007", 0, false},
		{"1e3", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"1.5", 0, false},
		{"99999999999999999999", 0, false},
		{"garbage", 0, false},
	} {
		got, ok := parseStoreMicros(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseStoreMicros(%q) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
