package repo

import (
	"errors"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

var (
	// ErrNotInitialized means there is no repository at the location.
	ErrNotInitialized = errors.New("repository not found")
	// ErrAlreadyInitialized means Init found an existing repository.
	ErrAlreadyInitialized = errors.New("repository already exists")
	// ErrWrongPassword means no key file opens with the given password.
	ErrWrongPassword = errors.New("wrong password")
	// ErrCorrupt means stored bytes failed a check (CRC, authentication,
	// hash, structure). The wrapping error names the file.
	ErrCorrupt = errors.New("corrupt data")
	// ErrMissing means a file a committed point needs (a chunk, an index)
	// is not in the repository: damage, like ErrCorrupt. The wrapping error
	// names the file.
	ErrMissing = errors.New("missing from the repository")
	// ErrPointNotFound means no restore point matches a reference.
	ErrPointNotFound = errors.New("restore point not found")
	// ErrAmbiguous means a point reference matches several points.
	ErrAmbiguous = errors.New("ambiguous restore point reference")
	// ErrPointHeld means a restore point is held (Hold: an instant
	// recovery session serves it) and is not removed.
	ErrPointHeld = errors.New("restore point is held")
	// ErrLocked means an exclusive operation (gc) is already running.
	ErrLocked = errors.New("repository is locked")
	// ErrScanExists means a point already has a scan record of that
	// engine and PutSealedScan, which only adds records, kept it.
	ErrScanExists = errors.New("the point already has a scan record of this engine")
)

// loadError wraps a failed load of a file a point needs: a file that is not
// there is damage (ErrMissing), other errors (I/O, network) are not.
func loadError(name string, err error) error {
	if errors.Is(err, storage.ErrNotExist) {
		return fmt.Errorf("load %s: %w: %w", name, ErrMissing, err)
	}
	return fmt.Errorf("load %s: %w", name, err)
}

// ChunkLoadError names a chunk that could not be loaded; one that does not
// exist wraps ErrMissing. For chunks loaded from elsewhere than the
// repository's backend (the data mover), which GetChunk's errors match.
func ChunkLoadError(id ChunkID, err error) error { return loadError(chunkName(id), err) }
