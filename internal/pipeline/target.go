package pipeline

import (
	"fmt"
	"io"
	"os"
)

// FileTarget is an opened restore destination.
type FileTarget struct {
	RestoreTarget
	f *os.File
}

// OpenFileTarget prepares path to receive a disk of the given size. A
// regular file (new or existing) is truncated to zero and then to size, so
// zero chunks stay holes. A block device must be at least size bytes; its
// zero chunks are written explicitly.
func OpenFileTarget(path string, size int64) (*FileTarget, error) {
	fi, err := os.Stat(path)
	if err == nil && fi.Mode()&os.ModeDevice != 0 {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		devSize, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("size of %s: %w", path, err)
		}
		if devSize < size {
			f.Close()
			return nil, fmt.Errorf("%s holds %d bytes, the disk needs %d", path, devSize, size)
		}
		return &FileTarget{RestoreTarget: RestoreTarget{W: f, WriteZeros: true}, f: f}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("size %s: %w", path, err)
	}
	return &FileTarget{RestoreTarget: RestoreTarget{W: f}, f: f}, nil
}

// Close flushes the data to stable storage and closes the target.
func (t *FileTarget) Close() error {
	if err := t.f.Sync(); err != nil {
		t.f.Close()
		return fmt.Errorf("sync %s: %w", t.f.Name(), err)
	}
	return t.f.Close()
}

// Abort closes without syncing (after a failed restore).
func (t *FileTarget) Abort() { t.f.Close() }
