package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// Repository is an open repository. It is safe for concurrent use.
type Repository struct {
	be    storage.Backend
	cfg   Config
	keys  Keys
	codec *codec
	now   func() time.Time
	cost  *costState // no-touch locks and the chunk cache (gc_notouch.go)
}

// InitOptions choose a new repository's parameters.
type InitOptions struct {
	ChunkSize   int    // 0: DefaultChunkSize
	Compression string // "": CompressionFast
	Encrypted   bool
	KDF         KDFParams   // zero: DefaultKDF()
	Clock       clock.Clock // nil: the real clock
	// ObjectLock locks every object a point needs (nil: no lock); the
	// backend must be a storage.Locker on a bucket with Object Lock.
	ObjectLock *ObjectLock
}

// Options tune an opened repository.
type Options struct {
	Clock clock.Clock // nil: the real clock
	// CacheDir holds the chunk caches of object-storage repositories
	// ("": os.UserCacheDir()/holdfast).
	CacheDir string
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Init creates a repository in an empty location.
func Init(ctx context.Context, be storage.Backend, password []byte, o InitOptions) (*Repository, error) {
	if _, err := be.Stat(ctx, configFile); err == nil {
		return nil, fmt.Errorf("%s: %w", be.Location(), ErrAlreadyInitialized)
	} else if !errors.Is(err, storage.ErrNotExist) {
		return nil, err
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Compression == "" {
		o.Compression = CompressionFast
	}
	if o.KDF == (KDFParams{}) {
		o.KDF = DefaultKDF()
	}
	o.Clock = clock.Or(o.Clock)
	if o.Encrypted && len(password) == 0 {
		return nil, errors.New("an encrypted repository needs a password")
	}
	if o.Encrypted {
		if err := o.KDF.validate(); err != nil {
			return nil, err
		}
	}
	cfg := Config{Version: FormatVersion, ID: randomHex(16), Created: o.Clock.Now().UTC(),
		ChunkSize: o.ChunkSize, Compression: o.Compression, Encryption: EncryptionNone}
	if o.Encrypted {
		cfg.Encryption = EncryptionAESGCM
	}
	cfg.ObjectLock = o.ObjectLock
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if _, ok := storage.AsLocker(be); cfg.ObjectLock != nil && !ok {
		return nil, fmt.Errorf("%s: %w", be.Location(), ErrNoObjectLock)
	}
	wbe := withObjectLock(be, cfg, o.Clock.Now)
	master := make([]byte, masterLen)
	_, _ = rand.Read(master)
	kf, err := newKeyFile(master, password, o.Encrypted, o.KDF)
	if err != nil {
		return nil, err
	}
	kb, _ := json.MarshalIndent(kf, "", "  ")
	if err := wbe.Save(ctx, keysDir+"/"+randomHex(16), kb); err != nil {
		return nil, fmt.Errorf("write key: %w", err)
	}
	keys, err := deriveKeys(master)
	if err != nil {
		return nil, err
	}
	if err := wbe.Save(ctx, configFile, sealConfig(keys.Config[:], cfg)); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	if err := be.Sync(ctx); err != nil {
		return nil, err
	}
	cfg.MAC = configMAC(keys.Config[:], cfg)
	return open(be, cfg, master, Options{Clock: o.Clock})
}

// Open opens an existing repository, trying the password on every key file.
func Open(ctx context.Context, be storage.Backend, password []byte, o Options) (*Repository, error) {
	cb, err := be.Load(ctx, configFile)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", be.Location(), ErrNotInitialized)
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	names, err := keyFileNames(ctx, be)
	if err != nil {
		return nil, err
	}
	return openKeys(be, cb, names, func(name string) ([]byte, error) { return be.Load(ctx, name) }, password, o)
}

// OpenWithKeys opens a repository from its config file and key files (as
// KeyFiles returns them) instead of reading them from be: a backup proxy
// receives them from the repository agent. be is where the repository's
// locks and chunks are then kept.
func OpenWithKeys(be storage.Backend, config []byte, keys []KeyFile, password []byte, o Options) (*Repository, error) {
	names := make([]string, len(keys))
	data := make(map[string][]byte, len(keys))
	for i, k := range keys {
		names[i] = k.Name
		data[k.Name] = k.Data
	}
	return openKeys(be, config, names, func(name string) ([]byte, error) { return data[name], nil }, password, o)
}

// openKeys parses the config and tries the password on every key file.
func openKeys(be storage.Backend, config []byte, names []string, load func(string) ([]byte, error), password []byte, o Options) (*Repository, error) {
	cfg, err := ParseConfig(config)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", be.Location(), configFile, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: %w: no key files", be.Location(), ErrCorrupt)
	}
	var firstErr error
	for _, name := range names {
		b, err := load(name)
		if err == nil {
			var kf keyFile
			if kf, err = parseKeyFile(b); err == nil {
				err = kf.matches(cfg)
			}
			if err == nil {
				var master []byte
				if master, err = kf.unwrap(password); err == nil {
					return open(be, cfg, master, o)
				}
			}
		}
		if !errors.Is(err, ErrWrongPassword) {
			err = fmt.Errorf("%s: %w", name, err)
		}
		if firstErr == nil || errors.Is(firstErr, ErrWrongPassword) && !errors.Is(err, ErrWrongPassword) {
			firstErr = err
		}
	}
	if errors.Is(firstErr, ErrWrongPassword) || firstErr == nil {
		return nil, ErrWrongPassword
	}
	return nil, firstErr
}

func open(be storage.Backend, cfg Config, master []byte, o Options) (*Repository, error) {
	keys, err := deriveKeys(master)
	if err != nil {
		return nil, err
	}
	if err := cfg.checkMAC(keys.Config[:]); err != nil {
		return nil, fmt.Errorf("%s/%w", be.Location(), err)
	}
	c, err := newCodec(keys.Data[:], cfg.Encryption == EncryptionAESGCM, cfg.Compression)
	if err != nil {
		return nil, err
	}
	now := clock.Or(o.Clock).Now
	be = withObjectLock(be, cfg, now)
	return &Repository{be: be, cfg: cfg, keys: keys, codec: c, now: now, cost: newCostState(o.CacheDir)}, nil
}

// Close releases the compressors.
func (r *Repository) Close() error {
	r.codec.close()
	return nil
}

// sealOldConfig adds the MAC to a config written before configs had one.
// It is best effort (a read-only view or a full disk leaves it for later).
func (r *Repository) sealOldConfig(ctx context.Context) {
	if r.cfg.MAC == "" {
		_ = r.be.Save(ctx, configFile, sealConfig(r.keys.Config[:], r.cfg))
	}
}

// Config returns the repository configuration.
func (r *Repository) Config() Config { return r.cfg }

// WithBackend returns a view of the opened repository on another backend
// (the same repository reached another way): it shares the keys and the
// codec, so it needs no password and no key derivation. Do not Close the
// view; close r when neither is used any more.
func (r *Repository) WithBackend(be storage.Backend) *Repository {
	if _, ok := storage.AsLocker(be); ok {
		be = withObjectLock(be, r.cfg, r.now) // else a mover connection: the repository agent locks what it stores
	}
	return &Repository{be: be, cfg: r.cfg, keys: r.keys, codec: r.codec, now: r.now, cost: newCostState(r.cost.cacheDir)}
}

// Backend returns the storage backend.
func (r *Repository) Backend() storage.Backend { return r.be }
