package repo

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"runtime/debug"

	"golang.org/x/crypto/argon2"
)

// masterLen is the size of the random master secret from which the chunk-ID
// key and the data key are derived.
const masterLen = 64

// KDFParams are the argon2id parameters of a key file.
type KDFParams struct {
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
}

// DefaultKDF returns the argon2id parameters Init uses unless told
// otherwise: 3 passes over 64 MiB with 4 lanes (about 0.2 s here).
func DefaultKDF() KDFParams { return KDFParams{Time: 3, Memory: 64 << 10, Threads: 4} }

// validate checks the bounds parseKeyFile accepts (Init checks them too,
// so that it never writes a key file Open refuses).
func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > 20 || p.Memory < 8 || p.Memory > 1<<20 || p.Threads < 1 {
		return fmt.Errorf("invalid argon2id parameters %+v: need 1-100 passes, 8 KiB-4 GiB, at least 1 thread", p)
	}
	return nil
}

// keyFile is the JSON stored under keys/<id>.
type keyFile struct {
	Version int       `json:"version"`
	KDF     string    `json:"kdf"` // "argon2id" or "none"
	Params  KDFParams `json:"params"`
	Salt    []byte    `json:"salt,omitempty"`
	Nonce   []byte    `json:"nonce,omitempty"`
	Data    []byte    `json:"data"` // wrapped (or, for kdf none, plain) master secret
}

// Keys are the secrets derived from the master secret.
type Keys struct {
	ChunkID [32]byte // keyed BLAKE3 key for chunk IDs
	Data    [32]byte // AES-256-GCM key for every stored blob
	Config  [32]byte // HMAC-SHA256 key of the config file's MAC
}

func deriveKeys(master []byte) (Keys, error) {
	var k Keys
	id, err := hkdf.Key(sha256.New, master, nil, "holdfast chunk id v1", 32)
	if err != nil {
		return k, err
	}
	data, err := hkdf.Key(sha256.New, master, nil, "holdfast data v1", 32)
	if err != nil {
		return k, err
	}
	cfg, err := hkdf.Key(sha256.New, master, nil, "holdfast config v1", 32)
	if err != nil {
		return k, err
	}
	copy(k.ChunkID[:], id)
	copy(k.Data[:], data)
	copy(k.Config[:], cfg)
	return k, nil
}

func wrapKey(password, salt []byte, p KDFParams) (cipher.AEAD, error) {
	kek := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, 32)
	if p.Memory >= 16<<10 {
		// The KDF's memory (64 MiB by default) is garbage now. Given back
		// at once, it does not set the heap goal at twice its size, which
		// every command would otherwise carry as resident memory.
		debug.FreeOSMemory()
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// newKeyFile creates a key file for a fresh master secret.
func newKeyFile(master, password []byte, encrypted bool, p KDFParams) (keyFile, error) {
	if !encrypted {
		return keyFile{Version: 1, KDF: "none", Data: master}, nil
	}
	kf := keyFile{Version: 1, KDF: "argon2id", Params: p, Salt: make([]byte, 32), Nonce: make([]byte, 12)}
	_, _ = rand.Read(kf.Salt)
	_, _ = rand.Read(kf.Nonce)
	aead, err := wrapKey(password, kf.Salt, p)
	if err != nil {
		return keyFile{}, err
	}
	kf.Data = aead.Seal(nil, kf.Nonce, master, []byte("holdfast key v1"))
	return kf, nil
}

// parseKeyFile decodes a key file; it validates every field so a garbled
// file gives an error rather than a huge argon2 allocation or a panic.
func parseKeyFile(b []byte) (keyFile, error) {
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return kf, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if kf.Version != 1 {
		return kf, fmt.Errorf("%w: unsupported key file version %d", ErrCorrupt, kf.Version)
	}
	switch kf.KDF {
	case "none":
		if len(kf.Data) != masterLen {
			return kf, fmt.Errorf("%w: bad key length", ErrCorrupt)
		}
	case "argon2id":
		if kf.Params.validate() != nil ||
			len(kf.Salt) < 16 || len(kf.Salt) > 64 || len(kf.Nonce) != 12 || len(kf.Data) != masterLen+16 {
			return kf, fmt.Errorf("%w: invalid key parameters", ErrCorrupt)
		}
	default:
		return kf, fmt.Errorf("%w: unknown kdf %q", ErrCorrupt, kf.KDF)
	}
	return kf, nil
}

// matches checks that the key file fits the config's encryption: an
// edited "encryption" field must read as a damaged config, not as a wrong
// password.
func (kf keyFile) matches(cfg Config) error {
	if (kf.KDF == "none") != (cfg.Encryption == EncryptionNone) {
		return fmt.Errorf("%w: the config says encryption %q but the key file is protected by kdf %q: the config was edited or damaged",
			ErrCorrupt, cfg.Encryption, kf.KDF)
	}
	return nil
}

// unwrap returns the master secret, or ErrWrongPassword.
func (kf keyFile) unwrap(password []byte) ([]byte, error) {
	if kf.KDF == "none" {
		return kf.Data, nil
	}
	aead, err := wrapKey(password, kf.Salt, kf.Params)
	if err != nil {
		return nil, err
	}
	master, err := aead.Open(nil, kf.Nonce, kf.Data, []byte("holdfast key v1"))
	if err != nil {
		return nil, ErrWrongPassword
	}
	return master, nil
}
