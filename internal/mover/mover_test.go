package mover

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
)

func TestBackupRestoreThroughMover(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{})
	c := e.dial(t, e.ts.URL, nil)
	d := memdisk.Standard(cs)

	m := backup(t, c, d, 4)
	st := m.Disks[0].Stats
	if want := int64(11*cs + 1000); st.BytesNew != want {
		t.Errorf("bytes new %d, want %d", st.BytesNew, want)
	}
	cs1 := c.Stats()
	// Sealed on the proxy: ten identical text chunks go once, compressed.
	if cs1.BytesSent >= st.BytesNew {
		t.Errorf("sent %d bytes for %d new bytes: not compressed on the proxy", cs1.BytesSent, st.BytesNew)
	}
	if cs1.ChunksSent != 12 {
		t.Errorf("chunks sent %d, want 12", cs1.ChunksSent)
	}
	if got := restore(t, c, m); !bytes.Equal(got, d.Data) {
		t.Fatal("restored disk differs")
	}
	// The agent's repository holds a normal point, readable locally.
	local, err := e.repo.LoadManifest(ctx, m.ID)
	if err != nil || local.Disks[0].IndexHash != m.Disks[0].IndexHash {
		t.Fatalf("point on the agent: %v", err)
	}
	if locks, _ := e.repo.ActiveLocks(ctx); len(locks) != 0 {
		t.Errorf("locks after the backup: %+v", locks)
	}

	// Unchanged re-backup: nothing stored, presence answered in batches.
	before := c.Stats()
	m2 := backup(t, c, d, 4)
	after := c.Stats()
	if s := m2.Disks[0].Stats; s.BytesNew != 0 || s.BytesStored != 0 {
		t.Errorf("unchanged backup stored %+v", s)
	}
	if n := after.ChunksSent - before.ChunksSent; n != 0 {
		t.Errorf("unchanged backup sent %d chunks", n)
	}
	if n := after.HasRequests - before.HasRequests; n > 2 {
		t.Errorf("unchanged backup made %d has requests, want at most 2 (prefetch)", n)
	}
	if after.CacheHits-before.CacheHits < 21 {
		t.Errorf("cache hits %d, want every chunk (21)", after.CacheHits-before.CacheHits)
	}
	ms, err := c.ListPoints(ctx)
	if err != nil || len(ms) != 2 || ms[1].ID != m2.ID {
		t.Fatalf("list points: %v %d", err, len(ms))
	}
	if got := restore(t, c, m2); !bytes.Equal(got, d.Data) {
		t.Fatal("restored second point differs")
	}
	if e.srv.started.Load() != 2 {
		t.Errorf("sessions started %d, want 2", e.srv.started.Load())
	}
}

func TestWrongPassword(t *testing.T) {
	e := newEnv(t, nil, ServerOptions{})
	_, err := Dial(context.Background(), ClientOptions{URL: e.ts.URL, Repo: "main", Password: []byte("nope"),
		HTTP: NewHTTPClient(e.tls)})
	if !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("dial with a wrong password: %v", err)
	}
	_, err = Dial(context.Background(), ClientOptions{URL: e.ts.URL, Repo: "other", Password: []byte(password),
		HTTP: NewHTTPClient(e.tls)})
	if !errors.Is(err, ErrRepoNotFound) {
		t.Fatalf("dial of an unknown repository: %v", err)
	}
}

func TestSessionExpiryReleasesLock(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{SessionTTL: 150 * time.Millisecond})
	c := e.dial(t, e.ts.URL, nil)
	lock, err := c.Lock(ctx, repo.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	if locks, _ := e.repo.ActiveLocks(ctx); len(locks) != 1 {
		t.Fatalf("locks while the session is open: %d", len(locks))
	}
	// Requests keep it alive.
	for i := 0; i < 4; i++ {
		time.Sleep(60 * time.Millisecond)
		if _, err := c.TouchChunk(ctx, repo.ChunkID{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		locks, _ := e.repo.ActiveLocks(ctx)
		if len(locks) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("expired session still holds its lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.TouchChunk(ctx, repo.ChunkID{9}); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("touch on an expired session: %v", err)
	}
	if err := lock.Release(); err != nil {
		t.Fatalf("release after expiry: %v", err)
	}
	if _, err := c.TouchChunk(ctx, repo.ChunkID{9}); !errors.Is(err, ErrNoSession) {
		t.Fatalf("touch without a session: %v", err)
	}
}

func TestAbortedBackupCommitsNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, ServerOptions{})
	c := e.dial(t, e.ts.URL, nil)
	lock, err := c.Lock(ctx, repo.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lock(ctx, repo.LockShared); err == nil {
		t.Fatal("second concurrent session on one client")
	}
	if _, err := c.Lock(ctx, repo.LockExclusive); err == nil {
		t.Fatal("exclusive lock over the wire")
	}
	data := bytes.Repeat([]byte{7}, cs)
	id := c.NewHasher().Sum(data)
	if _, err := c.PutChunk(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	_ = lock.Release()
	if ms, _ := e.repo.ListPoints(ctx); len(ms) != 0 {
		t.Fatalf("points after abort: %d", len(ms))
	}
	if locks, _ := e.repo.ActiveLocks(ctx); len(locks) != 0 {
		t.Fatalf("locks after abort: %d", len(locks))
	}
	// The chunk stays for reuse.
	if ok, _ := e.repo.TouchChunk(ctx, id); !ok {
		t.Fatal("chunk of the aborted session is gone")
	}
}
