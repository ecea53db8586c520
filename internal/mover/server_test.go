package mover

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

func TestUnknownSession(t *testing.T) {
	e := newEnv(t, nil, ServerOptions{})
	sid := randomID()
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "sessions/" + sid + "/has"},
		{http.MethodPut, "sessions/" + sid + "/chunks/" + repo.ChunkID{}.String()},
		{http.MethodPost, "sessions/" + sid + "/commit"},
		{http.MethodPost, "sessions/" + sid + "/keepalive"},
		{http.MethodDelete, "sessions/" + sid},
		{http.MethodPost, "sessions/not-a-session/has"},
	} {
		st, code, _ := e.request(t, tc.method, APIPrefix+"main/"+tc.path, make([]byte, 32))
		if st != http.StatusNotFound || code != codeSessionNotFound {
			t.Errorf("%s %s: %d %q, want 404 %s", tc.method, tc.path, st, code, codeSessionNotFound)
		}
	}
	// Another client certificate does not see the session.
	own := e.startSession(t)
	other := e.tls.Clone()
	other.Certificates = []tls.Certificate{e.ca.clientCert(t, "other proxy")}
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+APIPrefix+"main/sessions/"+own+"/keepalive", nil)
	resp, err := NewHTTPClient(other).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("foreign session: %d, want 404", resp.StatusCode)
	}
}

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, nil, ServerOptions{MaxIndexBytes: 1 << 20})
	sid := e.startSession(t)
	s := APIPrefix + "main/sessions/" + sid + "/"
	id := repo.ChunkID{1}.String()
	validIndex, _ := (&repo.Index{DiskSize: cs, ChunkSize: cs}).MarshalBinary()
	tests := []struct {
		name, method, path string
		body               []byte
		status             int
	}{
		{"has empty", "POST", s + "has", nil, 400},
		{"has ragged", "POST", s + "has", make([]byte, 33), 400},
		{"has too many", "POST", s + "has", make([]byte, (MaxHasIDs+1)*32), 413},
		{"chunk bad id", "PUT", s + "chunks/xyz", []byte("x"), 400},
		{"chunk uppercase id", "PUT", s + "chunks/" + strings.ToUpper(repo.ChunkID{0xab}.String()), []byte("x"), 400},
		{"chunk garbage", "PUT", s + "chunks/" + id, []byte("garbage"), 422},
		{"chunk too large", "PUT", s + "chunks/" + id, make([]byte, MaxSealedChunk+1), 413},
		{"index bad point", "PUT", s + "points/zz/disks/0/index", validIndex, 400},
		{"index bad disk", "PUT", s + "points/0123456789abcdef/disks/01/index", validIndex, 400},
		{"index disk out of range", "PUT", s + "points/0123456789abcdef/disks/99999/index", validIndex, 400},
		{"index garbage", "PUT", s + "points/0123456789abcdef/disks/0/index", []byte("HFIX"), 400},
		{"index too large", "PUT", s + "points/0123456789abcdef/disks/0/index", make([]byte, 1<<20+1), 413},
		{"commit not json", "POST", s + "commit", []byte("{"), 400},
		{"commit bad manifest", "POST", s + "commit", []byte(`{"version":1,"id":"x","vm":"v"}`), 400},
		{"commit unknown index", "POST", s + "commit", manifestJSON(t, "0123456789abcdef", 1), 409},
		{"session bad json", "POST", APIPrefix + "main/sessions", []byte("[]"), 400},
		{"session bad kind", "POST", APIPrefix + "main/sessions", []byte(`{"request_id":"` + randomID() + `","kind":"exclusive"}`), 400},
		{"session too large", "POST", APIPrefix + "main/sessions", make([]byte, maxSessionBody+1), 413},
		{"get chunk bad id", "GET", APIPrefix + "main/chunks/12", nil, 400},
		{"get chunk missing", "GET", APIPrefix + "main/chunks/" + id, nil, 404},
		{"get index missing point", "GET", APIPrefix + "main/points/0123456789abcdef/disks/0/index", nil, 404},
		{"unknown repo", "GET", APIPrefix + "nope/config", nil, 404},
		{"wrong method", "GET", s + "has", nil, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, code, b := e.request(t, tc.method, tc.path, tc.body)
			if st != tc.status {
				t.Fatalf("%d %s, want %d", st, b, tc.status)
			}
			if st != 405 && code == "" {
				t.Errorf("error reply without a code: %s", b)
			}
		})
	}
	// The session survived every malformed request.
	if st, _, _ := e.request(t, "POST", s+"keepalive", nil); st != http.StatusNoContent {
		t.Fatalf("keepalive after malformed requests: %d", st)
	}
}

func manifestJSON(t testing.TB, id string, disks int) []byte {
	m := repo.Manifest{Version: 1, ID: id, VM: "vm1", Time: time.Now()}
	for i := 0; i < disks; i++ {
		m.Disks = append(m.Disks, repo.DiskManifest{Index: i, Size: cs, ChunkSize: cs})
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommitChecks(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{})
	c := e.dial(t, e.ts.URL, nil)
	m := backup(t, c, memdisk.Standard(cs), 2)
	lock, err := c.Lock(ctx, repo.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Release() }()
	// An index upload for a committed point would overwrite its index.
	ix := &repo.Index{DiskSize: cs, ChunkSize: cs}
	if _, err := c.SaveIndex(ctx, m.ID, 0, ix); !errors.Is(err, ErrConflict) {
		t.Fatalf("index for a committed point: %v", err)
	}
	p := c.NewPointID()
	h, err := c.SaveIndex(ctx, p, 0, ix)
	if err != nil {
		t.Fatal(err)
	}
	bad := &repo.Manifest{ID: p, VM: "vm1", Time: time.Now(), Disks: []repo.DiskManifest{{Size: cs, ChunkSize: cs, IndexHash: repo.ChunkID{1}}}}
	if err := c.CommitPoint(ctx, bad); !errors.Is(err, ErrConflict) {
		t.Fatalf("commit with a wrong index hash: %v", err)
	}
	good := *bad
	good.Disks = []repo.DiskManifest{{Size: cs, ChunkSize: cs, IndexHash: h}}
	for i := 0; i < 2; i++ { // a retried commit succeeds again
		if err := c.CommitPoint(ctx, &good); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	if _, err := e.repo.LoadManifest(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutChunk(ctx, repo.ChunkID{}, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("upload after commit: %v", err)
	}
}

// fullDisk fails chunk writes with ENOSPC.
type fullDisk struct{ *storage.Local }

func (f fullDisk) Save(ctx context.Context, name string, data []byte) error {
	if strings.HasPrefix(name, "chunks/") {
		return fmt.Errorf("save %s: %w", name, &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC})
	}
	return f.Local.Save(ctx, name, data)
}

func TestNoSpace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testrepo.New(t, fullDisk{storage.NewLocal(t.TempDir())}), ServerOptions{})
	c := e.dial(t, e.ts.URL, nil)
	lock, err := c.Lock(ctx, repo.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Release() }()
	data := bytes.Repeat([]byte("x"), 1000)
	_, err = c.PutChunk(ctx, c.NewHasher().Sum(data), data)
	var se *StatusError
	if !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &se) || se.Status != http.StatusInsufficientStorage {
		t.Fatalf("put on a full disk: %v", err)
	}
}

func TestCorruptUploadRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{})
	c := e.dial(t, e.ts.URL, nil)
	other := testrepo.New(t, nil) // different keys
	sid := e.startSession(t)
	data := bytes.Repeat([]byte("chunk "), 5000)
	id := c.NewHasher().Sum(data)
	foreign, _ := other.SealChunk(id, data)
	own, _ := c.keys.SealChunk(id, data)
	own = bytes.Clone(own)
	path := APIPrefix + "main/sessions/" + sid + "/chunks/"
	if st, code, _ := e.request(t, "PUT", path+id.String(), foreign); st != 422 || code != codeCorrupt {
		t.Errorf("blob sealed with other keys: %d %s", st, code)
	}
	if st, _, _ := e.request(t, "PUT", path+repo.ChunkID{5}.String(), own); st != 422 {
		t.Errorf("blob under the wrong id: %d", st)
	}
	if ok, _ := e.repo.TouchChunk(ctx, id); ok {
		t.Fatal("refused blob was stored")
	}
	if st, _, _ := e.request(t, "PUT", path+id.String(), own); st != http.StatusCreated {
		t.Errorf("valid blob: %d", st)
	}
	if st, _, b := e.request(t, "PUT", path+id.String(), own); st != http.StatusOK || !bytes.Contains(b, []byte(`"existed":true`)) {
		t.Errorf("repeated upload: %d %s", st, b)
	}
}

func TestClientCertificateRequired(t *testing.T) {
	e := newEnv(t, nil, ServerOptions{})
	noCert := e.tls.Clone()
	noCert.Certificates = nil
	strange := newCA(t)
	wrongCA := e.tls.Clone()
	wrongCA.Certificates = []tls.Certificate{strange.clientCert(t, "intruder")}
	for name, cfg := range map[string]*tls.Config{"no certificate": noCert, "unknown CA": wrongCA} {
		// Under TLS 1.3 the agent refuses the certificate after the
		// handshake: the client sees the alert, or (a race with the close)
		// a reset or a broken pipe on its write. Either way the refusal must
		// end the dial with an error, not succeed or hang.
		_, err := Dial(context.Background(), ClientOptions{URL: e.ts.URL, Repo: "main", Password: []byte(password),
			HTTP: NewHTTPClient(cfg), Retry: RetryPolicy{Attempts: 3, Initial: time.Millisecond, Max: time.Millisecond}})
		if err == nil {
			t.Fatalf("%s: dial succeeded", name)
		}
		closed := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
			strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe")
		if !strings.Contains(err.Error(), "certificate") && !closed {
			t.Errorf("%s: %v, want a certificate refusal", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
