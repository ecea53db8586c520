package mover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo"
)

var (
	_ repo.Sink        = (*Client)(nil)
	_ repo.PointReader = (*Client)(nil)
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// URL is the agent's base URL, e.g. "https://agent.example:7443".
	URL string
	// Repo names the repository on the agent.
	Repo string
	// Password opens the repository's keys on the proxy.
	Password []byte
	// HTTP carries the TLS configuration (client certificate, CA); nil
	// means http.DefaultClient. NewHTTPClient builds a suitable one.
	HTTP *http.Client
	// Uploads, if set, are further HTTP clients (each with its own
	// connection) that chunk uploads are spread over together with HTTP:
	// one HTTP/2 connection is read and decrypted by one goroutine on each
	// side, so a fast link needs more than one.
	Uploads []*http.Client
	// Retry governs retries of network errors and 502/503/504 replies.
	Retry RetryPolicy
	// RequestTimeout bounds one attempt of one request; 0 means 10 minutes.
	RequestTimeout time.Duration
	// DisablePrefetch turns off the batched presence check of a previous
	// point's chunks when LoadIndex runs during a session.
	DisablePrefetch bool
	// MaxIndexBytes bounds a downloaded index; 0 means DefaultMaxIndexBytes.
	MaxIndexBytes int64
	// Shared makes the sessions this client starts (Lock) shared: other
	// clients that the agent authorizes and that know the session ID
	// (SessionID) may Attach to it and upload chunks and indexes into it,
	// for example one disk each of a VM whose point this client commits.
	// Only this client commits or aborts it.
	Shared bool
	Logger *slog.Logger // nil: discard
	// Clock times the stage statistics; nil: the real clock.
	Clock clock.Clock
}

// Client is a repository on a remote agent; it implements repo.Sink.
// It runs one backup session at a time: its own (Lock starts it, the lock's
// Release ends it) or another client's shared session (Attach, Detach).
// Read-only calls (ListPoints, LoadIndex, GetChunk) need none. It is safe
// for concurrent use.
type Client struct {
	o     ClientOptions
	http  *http.Client
	base  string // URL + APIPrefix + repo
	log   *slog.Logger
	keys  *repo.Repository // the repository opened from the agent's key files: hashing, sealing, opening
	stats counters
	next  atomic.Uint32 // round robin over upload clients
	// forked: keys belong to the client this one was forked from.
	forked bool

	mu   sync.Mutex
	sess *clientSession
	busy bool // a session is being started
}

// Dial fetches the repository's config and key files from the agent and
// opens the keys with the password (argon2id runs here, on the proxy).
func Dial(ctx context.Context, o ClientOptions) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("mover: invalid agent URL %q", o.URL)
	}
	if !ValidRepoName(o.Repo) {
		return nil, fmt.Errorf("mover: invalid repository name %q", o.Repo)
	}
	o.Clock = clock.Or(o.Clock)
	c := &Client{o: o, http: o.HTTP, log: o.Logger,
		base: strings.TrimSuffix(o.URL, "/") + APIPrefix + o.Repo + "/"}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.o.Retry = c.o.Retry.Or(defaultRetry)
	if c.o.RequestTimeout <= 0 {
		c.o.RequestTimeout = 10 * time.Minute
	}
	if c.o.MaxIndexBytes <= 0 {
		c.o.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if c.keys, err = c.openKeys(ctx, o.Password); err != nil {
		return nil, err
	}
	return c, nil
}

// Close ends a session of its own still open (aborting it), forgets an
// attached one (which stays open on the agent) and releases the codec.
func (c *Client) Close() error {
	c.Detach()
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		_ = c.endSession(s.lockName)
	}
	if c.forked {
		return nil
	}
	return c.keys.Close()
}

// Fork returns a client of the same repository that shares c's opened keys,
// HTTP client and options but has a session of its own (one client runs one
// session at a time). Forking needs no password and no key derivation.
// Closing the fork ends or forgets its session only; c must stay open while
// forks are in use.
func (c *Client) Fork() *Client {
	f := &Client{o: c.o, http: c.http, base: c.base, log: c.log, forked: true}
	f.keys = c.keys.WithBackend(&sessionBackend{c: f})
	return f
}

// Config returns the repository configuration.
func (c *Client) Config() repo.Config { return c.keys.Config() }

// NewHasher returns a hasher keyed with the repository's chunk-ID key.
func (c *Client) NewHasher() *repo.Hasher { return c.keys.NewHasher() }

// NewPointID returns a fresh restore point ID.
func (c *Client) NewPointID() string { return c.keys.NewPointID() }

// Lock starts a backup session: the agent takes the repository's shared
// lock and holds it until the returned lock's Release (or commit, or
// expiry). Exclusive locks (GC) are taken on the agent, not over the wire.
func (c *Client) Lock(ctx context.Context, kind string) (*repo.Lock, error) {
	if kind != repo.LockShared {
		return nil, fmt.Errorf("mover: only shared locks over the data mover protocol (run %s operations on the agent)", kind)
	}
	// repo.Lock writes locks/<id> through sessionBackend, which starts the
	// session; its refresh touches the file (keepalive) and Release removes
	// it (end of session).
	return c.keys.Lock(ctx, kind)
}

// PutChunk seals (compresses, encrypts) the chunk here and uploads the
// blob. It returns the stored size. After a dropped connection it asks
// whether the interrupted upload was stored before sending it again.
func (c *Client) PutChunk(ctx context.Context, id repo.ChunkID, plain []byte) (int, error) {
	s, err := c.session()
	if err != nil {
		return 0, err
	}
	t0 := c.o.Clock.Now()
	sealed, err := c.keys.SealChunk(id, plain)
	c.stats.sealNanos.Add(int64(c.o.Clock.Since(t0)))
	if err != nil {
		return 0, err
	}
	// The transport may read (and close) a request body after Do returns,
	// so the pooled blob goes back when the last attempt closed it.
	size := len(sealed)
	ref := newBodyRef(func() { c.keys.Recycle(sealed) })
	t1 := c.o.Clock.Now()
	_, err = c.do(ctx, call{method: http.MethodPut, path: s.path("chunks", id.String()), body: sealed, ref: ref,
		ctype: ctypeBinary, limit: maxSmallReply, resumed: func(ctx context.Context) (bool, error) {
			return c.hasOne(ctx, s, id)
		}, reply: func(h http.Header) {
			if d, ok := parseStoreMicros(h.Get(storeMicrosHeader)); ok {
				c.stats.targetNanos.Add(int64(d))
			}
		}})
	ref.done()
	c.stats.uploadNanos.Add(int64(c.o.Clock.Since(t1)))
	if err != nil {
		return 0, fmt.Errorf("store chunk %s: %w", id, err)
	}
	c.stats.chunksSent.Add(1)
	s.cache.add(id)
	return size, nil
}

// GetChunk downloads the sealed blob and opens, decompresses and re-hashes
// it here (repo.OpenChunk), so the WAN carries reduced data and a damaged
// chunk is caught on the proxy. A chunk the agent does not have is an error
// wrapping repo.ErrMissing.
func (c *Client) GetChunk(ctx context.Context, h *repo.Hasher, id repo.ChunkID, dst []byte) ([]byte, error) {
	blob, err := c.do(ctx, call{method: http.MethodGet, path: "chunks/" + id.String(), limit: MaxSealedChunk})
	if err != nil {
		return nil, repo.ChunkLoadError(id, err)
	}
	return c.keys.OpenChunk(h, id, blob, dst)
}

// SaveIndex uploads the plain index of one disk of the point being written
// and returns its hash, which the agent must confirm.
func (c *Client) SaveIndex(ctx context.Context, pointID string, disk int, ix *repo.Index) (repo.ChunkID, error) {
	plain, err := ix.MarshalBinary()
	if err != nil {
		return repo.ChunkID{}, err
	}
	return c.saveIndexBytes(ctx, pointID, disk, plain)
}

// SaveEncodedIndex uploads the index a backup built (the wire carries its
// stored plain form either way), so the proxy never decodes it.
func (c *Client) SaveEncodedIndex(ctx context.Context, pointID string, disk int, enc *repo.IndexEncoder) (repo.ChunkID, error) {
	plain, err := enc.Bytes()
	if err != nil {
		return repo.ChunkID{}, err
	}
	return c.saveIndexBytes(ctx, pointID, disk, plain)
}

func (c *Client) saveIndexBytes(ctx context.Context, pointID string, disk int, plain []byte) (repo.ChunkID, error) {
	s, err := c.session()
	if err != nil {
		return repo.ChunkID{}, err
	}
	hash := c.keys.NewHasher().Sum(plain)
	b, err := c.do(ctx, call{method: http.MethodPut, body: plain, ctype: ctypeBinary, limit: maxSmallReply,
		path: s.path("points", url.PathEscape(pointID), "disks", strconv.Itoa(disk), "index")})
	if err != nil {
		return repo.ChunkID{}, fmt.Errorf("store index: %w", err)
	}
	var reply indexResponse
	if err := decodeJSON(b, &reply); err != nil {
		return repo.ChunkID{}, fmt.Errorf("%w: index reply: %v", ErrProtocol, err)
	}
	if reply.Hash != hash {
		return repo.ChunkID{}, fmt.Errorf("%w: the agent hashed index %s/disk-%d to %s, the proxy to %s (different keys?)",
			ErrProtocol, pointID, disk, reply.Hash, hash)
	}
	return hash, nil
}

// CommitPoint sends the manifest; the agent checks it against the indexes
// of this session (uploaded by this client or, in a shared session, by
// attached ones), commits it and releases the lock. An attached client
// cannot commit: the session's owner does (ErrNotSessionOwner).
func (c *Client) CommitPoint(ctx context.Context, m *repo.Manifest) error {
	s, err := c.session()
	if err != nil {
		return err
	}
	if s.attached {
		return fmt.Errorf("commit point %s: %w (this client is attached to session %s)", m.ID, ErrNotSessionOwner, s.id[:8])
	}
	m.Version = 1
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	reply, err := c.do(ctx, call{method: http.MethodPost, path: s.path("commit"), body: b, ctype: ctypeJSON, limit: maxSmallReply})
	if err != nil {
		return fmt.Errorf("commit point %s: %w", m.ID, err)
	}
	var cr commitResponse
	if err := decodeJSON(reply, &cr); err != nil || cr.Point != m.ID {
		return fmt.Errorf("%w: commit reply %q", ErrProtocol, reply)
	}
	s.committed.Store(true)
	return nil
}

// ListPoints returns every committed manifest, oldest first.
func (c *Client) ListPoints(ctx context.Context) ([]*repo.Manifest, error) {
	b, err := c.do(ctx, call{method: http.MethodGet, path: "points", limit: maxPointsBody})
	if err != nil {
		return nil, fmt.Errorf("list points: %w", err)
	}
	var reply pointsResponse
	if err := decodeJSON(b, &reply); err != nil {
		return nil, fmt.Errorf("%w: points reply: %v", ErrProtocol, err)
	}
	ms := make([]*repo.Manifest, 0, len(reply.Points))
	for i, raw := range reply.Points {
		m, err := repo.UnmarshalManifest(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: point %d of the reply: %v", ErrProtocol, i, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// LoadIndex downloads one disk's index and checks it against the
// manifest. During a session it also prefetches (batched "has", which
// touches) the index's chunks, so the backup's TouchChunk calls for them
// need no round trip.
func (c *Client) LoadIndex(ctx context.Context, m *repo.Manifest, disk int) (*repo.Index, error) {
	if disk < 0 || disk >= len(m.Disks) {
		return nil, fmt.Errorf("point %s has no disk %d (it has %d)", m.ID, disk, len(m.Disks))
	}
	name := fmt.Sprintf("point %s disk %d index", m.ID, disk)
	b, err := c.do(ctx, call{method: http.MethodGet, limit: c.o.MaxIndexBytes,
		path: "points/" + url.PathEscape(m.ID) + "/disks/" + strconv.Itoa(disk) + "/index"})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	d := m.Disks[disk]
	if c.keys.NewHasher().Sum(b) != d.IndexHash {
		return nil, fmt.Errorf("%s: %w: does not match the manifest's hash", name, repo.ErrCorrupt)
	}
	ix, err := repo.UnmarshalIndex(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if ix.DiskSize != d.Size || ix.ChunkSize != d.ChunkSize {
		return nil, fmt.Errorf("%s: %w: geometry differs from the manifest", name, repo.ErrCorrupt)
	}
	if _, err := c.session(); err == nil && !c.o.DisablePrefetch {
		ids := make([]repo.ChunkID, len(ix.Entries))
		for i, e := range ix.Entries {
			ids[i] = e.ID
		}
		if err := c.Prefetch(ctx, ids); err != nil {
			return nil, fmt.Errorf("prefetch chunks of %s: %w", name, err)
		}
	}
	return ix, nil
}

// session returns the current session, or ErrNoSession.
func (c *Client) session() (*clientSession, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return nil, ErrNoSession
	}
	return c.sess, nil
}

// errReadOnly is what sessionBackend answers for operations the proxy's view
// of the repository does not have.
var errReadOnly = errors.New("mover: not available on the proxy's view of the repository")

// ForgetPoint removes a restore point on the agent (retention; the agent
// allows it to the backup server only). Its chunks stay until a GC on the
// agent. A point already gone is not an error.
func (c *Client) ForgetPoint(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "points/" + url.PathEscape(id), limit: maxSmallReply})
	var se *StatusError
	if errors.As(err, &se) && se.Code == codePointNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("forget point %s: %w", id, err)
	}
	return nil
}
