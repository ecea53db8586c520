package repo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// FormatVersion is the repository format version written by this code.
const FormatVersion = 1

// Chunk size limits.
const (
	MinChunkSize     = 256 << 10
	MaxChunkSize     = 8 << 20
	DefaultChunkSize = 1 << 20
)

// Compression levels.
const (
	CompressionNone    = "none"
	CompressionFast    = "fast"
	CompressionOptimal = "optimal"
	CompressionHigh    = "high"
)

// Encryption schemes.
const (
	EncryptionAESGCM = "aes-256-gcm"
	EncryptionNone   = "none"
)

// Config is the plain-text "config" file at the repository root.
type Config struct {
	Version     int       `json:"version"`
	ID          string    `json:"id"`
	Created     time.Time `json:"created"`
	ChunkSize   int       `json:"chunk_size"`
	Compression string    `json:"compression"`
	Encryption  string    `json:"encryption"`
	// ObjectLock, when set, locks every object a point needs (object
	// storage with S3 Object Lock, see objlock.go). Configs without it keep
	// their canonical bytes (the field is omitted).
	ObjectLock *ObjectLock `json:"object_lock,omitempty"`
	// MAC authenticates the other fields with the master key (see
	// configMAC). Configs written before it existed have none: Open
	// accepts them and the next lock holder adds it.
	MAC string `json:"mac,omitempty"`
}

// configMAC is the hex HMAC-SHA256, under the config key derived from the
// master secret, of the config's canonical bytes: its compact JSON
// encoding without the mac field, fields in the order of Config.
func configMAC(key []byte, c Config) string {
	c.MAC = ""
	b, _ := json.Marshal(c)
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// checkMAC verifies the config's MAC; a config without one passes (an
// older repository, see Config.MAC).
func (c Config) checkMAC(key []byte) error {
	if c.MAC == "" {
		return nil
	}
	if !hmac.Equal([]byte(c.MAC), []byte(configMAC(key, c))) {
		return fmt.Errorf("config: %w: its authentication code does not match: the file was edited or damaged", ErrCorrupt)
	}
	return nil
}

// sealConfig returns the config file's bytes with the MAC set.
func sealConfig(key []byte, c Config) []byte {
	c.MAC = configMAC(key, c)
	b, _ := json.MarshalIndent(c, "", "  ")
	return b
}

func (c Config) validate() error {
	if c.Version != FormatVersion {
		return fmt.Errorf("unsupported repository format version %d (this holdfast reads version %d)", c.Version, FormatVersion)
	}
	if err := ValidateChunkSize(c.ChunkSize); err != nil {
		return err
	}
	if err := ValidateCompression(c.Compression); err != nil {
		return err
	}
	if c.Encryption != EncryptionAESGCM && c.Encryption != EncryptionNone {
		return fmt.Errorf("unknown encryption %q", c.Encryption)
	}
	if len(c.ID) == 0 || len(c.ID) > 128 {
		return fmt.Errorf("invalid repository id")
	}
	if c.ObjectLock != nil {
		return c.ObjectLock.Validate()
	}
	return nil
}

// ValidateChunkSize checks a chunk size: a power of two in [256 KiB, 8 MiB].
func ValidateChunkSize(n int) error {
	if n < MinChunkSize || n > MaxChunkSize || n&(n-1) != 0 {
		return fmt.Errorf("chunk size %d: must be a power of two between 256 KiB and 8 MiB", n)
	}
	return nil
}

// ValidateCompression checks a compression level name.
func ValidateCompression(s string) error {
	switch s {
	case CompressionNone, CompressionFast, CompressionOptimal, CompressionHigh:
		return nil
	}
	return fmt.Errorf("compression %q: must be none, fast, optimal or high", s)
}

// ParseConfig decodes and validates the config file.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("config: %w: %v", ErrCorrupt, err)
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w: %v", ErrCorrupt, err)
	}
	return c, nil
}
