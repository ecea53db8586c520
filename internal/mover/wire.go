package mover

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Protocol limits (docs/data-mover-protocol.md, Limits).
const (
	// APIPrefix starts every endpoint path.
	APIPrefix = "/mover/v1/repos/"
	// MaxHasIDs is the most chunk IDs one "has" request may carry.
	MaxHasIDs = 4096
	// MaxSealedChunk bounds an uploaded or downloaded chunk blob: the
	// largest chunk plus the blob header (28), nonce (12) and tag (16).
	MaxSealedChunk = repo.MaxChunkSize + 64
	// MaxDisks bounds the disk number of an index.
	MaxDisks = 1024
	// DefaultMaxIndexBytes bounds a plain index (34 bytes per non-zero
	// chunk: about 15 TiB of written data at 1 MiB chunks).
	DefaultMaxIndexBytes = 512 << 20

	maxSessionBody  = 4 << 10
	maxManifestBody = 4 << 20
	maxErrorBody    = 4 << 10
	maxConfigBody   = 64 << 10
	maxKeysBody     = 1 << 20
	maxPointsBody   = 256 << 20
	maxSmallReply   = 64 << 10
	idLen           = 32 // bytes of a repo.ChunkID
)

const (
	ctypeBinary = "application/octet-stream"
	ctypeJSON   = "application/json"
)

var (
	hex32Pattern   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	pointPattern   = regexp.MustCompile(`^[0-9a-f]{16}$`)
	repoPattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	keyNamePattern = regexp.MustCompile(`^keys/[A-Za-z0-9._-]{1,128}$`)
)

// sessionRequest starts (or, with the same request ID, finds again) a session.
type sessionRequest struct {
	RequestID string `json:"request_id"` // 32 hex digits chosen by the client
	Kind      string `json:"kind"`       // "shared"
	Hostname  string `json:"hostname,omitempty"`
	PID       int    `json:"pid,omitempty"`
	// Shared lets other authorized peers that know the session ID use its
	// upload endpoints (has, chunks, indexes, keepalive); commit and abort
	// stay with the owner, the peer that started it.
	Shared bool `json:"shared,omitempty"`
}

type sessionResponse struct {
	Session    string `json:"session"`
	TTLSeconds int    `json:"ttl_seconds"`
	// Shared confirms a shared session (an older agent ignores the request
	// field and starts a private one).
	Shared bool `json:"shared,omitempty"`
}

// storeMicrosHeader carries, in the reply to a chunk upload, how long the
// agent took from the complete body to the stored (or touched) chunk, in
// microseconds: waiting for a verification slot, verifying and storing.
const storeMicrosHeader = "Holdfast-Store-Micros"

// maxStoreMicros bounds a plausible storeMicrosHeader value (one hour);
// larger or malformed values are ignored.
const maxStoreMicros = int64(time.Hour / time.Microsecond)

// parseStoreMicros reads storeMicrosHeader defensively: canonical
// non-negative decimal up to maxStoreMicros, else ok is false.
func parseStoreMicros(v string) (time.Duration, bool) {
	if v == "" || len(v) > 12 {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > maxStoreMicros || strconv.FormatInt(n, 10) != v {
		return 0, false
	}
	return time.Duration(n) * time.Microsecond, true
}

type chunkResponse struct {
	Existed bool `json:"existed"`
	Stored  int  `json:"stored"`
}

type indexResponse struct {
	Hash repo.ChunkID `json:"hash"`
}

type commitResponse struct {
	Point string `json:"point"`
}

type keyEntry struct {
	Name string `json:"name"`
	Data []byte `json:"data"` // base64 in JSON
}

type keysResponse struct {
	Keys []keyEntry `json:"keys"`
}

type pointsResponse struct {
	Points []json.RawMessage `json:"points"`
}

type errorResponse struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// encodeIDs is the body of a "has" request: the raw IDs back to back.
func encodeIDs(ids []repo.ChunkID) []byte {
	b := make([]byte, 0, len(ids)*idLen)
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

// decodeIDs parses a "has" request body: 1 to MaxHasIDs raw 32-byte IDs.
func decodeIDs(b []byte) ([]repo.ChunkID, error) {
	if len(b) == 0 || len(b)%idLen != 0 {
		return nil, fmt.Errorf("has: body of %d bytes is not a non-empty list of 32-byte chunk ids", len(b))
	}
	if len(b)/idLen > MaxHasIDs {
		return nil, fmt.Errorf("has: %d ids, at most %d", len(b)/idLen, MaxHasIDs)
	}
	ids := make([]repo.ChunkID, len(b)/idLen)
	for i := range ids {
		copy(ids[i][:], b[i*idLen:])
	}
	return ids, nil
}

// encodeBitmap is the body of a "has" reply: bit i (byte i/8, bit i%8,
// least significant first) is set when ID i is stored.
func encodeBitmap(present []bool) []byte {
	b := make([]byte, (len(present)+7)/8)
	for i, p := range present {
		if p {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return b
}

// decodeBitmap parses a "has" reply for n IDs; unused bits must be zero.
func decodeBitmap(b []byte, n int) ([]bool, error) {
	if len(b) != (n+7)/8 {
		return nil, fmt.Errorf("%w: has reply of %d bytes for %d ids", ErrProtocol, len(b), n)
	}
	if n%8 != 0 && b[len(b)-1]>>(n%8) != 0 {
		return nil, fmt.Errorf("%w: has reply sets bits beyond id %d", ErrProtocol, n)
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = b[i/8]&(1<<(i%8)) != 0
	}
	return out, nil
}

// parseDisk parses a disk number: canonical decimal below MaxDisks.
func parseDisk(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= MaxDisks || strconv.Itoa(n) != s {
		return 0, fmt.Errorf("invalid disk number %q", s)
	}
	return n, nil
}

// randomID returns 32 hex digits (session and request IDs).
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidRepoName reports whether s can name a served repository: letters,
// digits, '.', '_' and '-', at most 64, not starting with punctuation.
func ValidRepoName(s string) bool { return repoPattern.MatchString(s) }

// decodeJSON decodes one JSON value; unknown fields are ignored (newer
// peers), trailing data is an error.
func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return nil
}
