package passhash

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// Default are the parameters new hashes use.
var Default = Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}

// Bounds on parameters a stored hash may ask for, and on inputs.
const (
	maxMemoryKiB = 256 * 1024
	maxTime      = 16
	maxThreads   = 16
	saltSize     = 16
	keySize      = 32
	minSalt      = 8
	maxKey       = 64
	// MaxPassword is the longest password hashed, in bytes.
	MaxPassword = 1024
)

// ErrMalformed is a stored hash that is not a valid argon2id PHC string.
var ErrMalformed = errors.New("passhash: malformed argon2id hash")

// ErrTooLong is a password longer than MaxPassword bytes.
var ErrTooLong = fmt.Errorf("password longer than %d bytes", MaxPassword)

// Hash is a parsed PHC hash.
type Hash struct {
	Params
	Salt []byte
	Key  []byte
}

// New hashes password with p and a random salt and returns the PHC string.
func New(password string, p Params) (string, error) {
	if len(password) > MaxPassword {
		return "", ErrTooLong
	}
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, saltSize)
	_, _ = rand.Read(salt) // never fails (crypto/rand)
	h := Hash{Params: p, Salt: salt, Key: argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keySize)}
	return h.String(), nil
}

// String is h in the PHC format.
func (h Hash) String() string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.MemoryKiB, h.Time, h.Threads, enc.EncodeToString(h.Salt), enc.EncodeToString(h.Key))
}

func (p Params) check() error {
	if p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB || p.Time < 1 || p.Time > maxTime ||
		p.Threads < 1 || p.Threads > maxThreads {
		return fmt.Errorf("%w: parameters m=%d,t=%d,p=%d out of bounds", ErrMalformed, p.MemoryKiB, p.Time, p.Threads)
	}
	return nil
}

// Parse parses a PHC argon2id string.
func Parse(s string) (Hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Hash{}, fmt.Errorf("%w: want $argon2id$v=…$m=…,t=…,p=…$salt$key", ErrMalformed)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Hash{}, fmt.Errorf("%w: version %q", ErrMalformed, parts[2])
	}
	var h Hash
	var err error
	if h.Params, err = parseParams(parts[3]); err != nil {
		return Hash{}, err
	}
	enc := base64.RawStdEncoding
	if h.Salt, err = enc.DecodeString(parts[4]); err != nil || len(h.Salt) < minSalt {
		return Hash{}, fmt.Errorf("%w: salt", ErrMalformed)
	}
	if h.Key, err = enc.DecodeString(parts[5]); err != nil || len(h.Key) < 16 || len(h.Key) > maxKey {
		return Hash{}, fmt.Errorf("%w: key", ErrMalformed)
	}
	return h, nil
}

// parseParams parses "m=…,t=…,p=…" in that order.
func parseParams(s string) (Params, error) {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return Params{}, fmt.Errorf("%w: parameters %q", ErrMalformed, s)
	}
	var v [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		k, val, ok := strings.Cut(fields[i], "=")
		n, err := strconv.ParseUint(val, 10, 32)
		if !ok || k != name || err != nil {
			return Params{}, fmt.Errorf("%w: parameters %q", ErrMalformed, s)
		}
		v[i] = n
	}
	if v[2] > maxThreads {
		return Params{}, fmt.Errorf("%w: parameters %q", ErrMalformed, s)
	}
	p := Params{MemoryKiB: uint32(v[0]), Time: uint32(v[1]), Threads: uint8(v[2])}
	return p, p.check()
}

// Check reports whether password matches the PHC string encoded; a
// malformed hash is an error (and no match).
func Check(password, encoded string) (bool, error) {
	h, err := Parse(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > MaxPassword {
		return false, nil
	}
	key := argon2.IDKey([]byte(password), h.Salt, h.Time, h.MemoryKiB, h.Threads, uint32(len(h.Key)))
	return subtle.ConstantTimeCompare(key, h.Key) == 1, nil
}
