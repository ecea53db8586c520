package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// tmpPrefix marks files being written; List skips them and GC removes old ones.
const tmpPrefix = ".tmp-"

// Local stores files in a directory of the local file system.
type Local struct {
	root string
	pend *pending
	// kick starts the write-back of a file just written (startWriteback).
	kick func(*os.File)
}

var _ Backend = (*Local)(nil)

// NewLocal returns a backend rooted at dir. The directory need not exist yet.
func NewLocal(dir string) *Local {
	return &Local{root: filepath.Clean(dir), pend: &pending{}, kick: startWriteback}
}

// Location returns the root directory.
func (l *Local) Location() string { return l.root }

func (l *Local) path(name string) (string, error) {
	clean := path.Clean("/" + name)
	if clean == "/" || strings.Contains(name, "\\") {
		return "", fmt.Errorf("invalid storage name %q", name)
	}
	return filepath.Join(l.root, filepath.FromSlash(clean[1:])), nil
}

func notExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotExist, err)
	}
	return err
}

// Save writes data to a temporary file and renames it into place.
func (l *Local) Save(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := l.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:]))
	// A second try covers GC removing the directory once it was empty,
	// between MkdirAll and the create.
	for try := 0; ; try++ {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("save %s: %w", name, err)
		}
		err := l.writeFile(tmp, data)
		if err == nil {
			break
		}
		_ = os.Remove(tmp)
		if try == 0 && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return fmt.Errorf("save %s: %w", name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save %s: %w", name, immutableFileError("overwrite", name, p, err))
	}
	l.pend.add(p, dir)
	return nil
}

func (l *Local) writeFile(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	l.kick(f)
	return f.Close()
}

// Load reads a whole file.
func (l *Local) Load(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, notExist(err)
	}
	return b, nil
}

// Stat describes a file.
func (l *Local) Stat(ctx context.Context, name string) (FileInfo, error) {
	p, err := l.path(name)
	if err != nil {
		return FileInfo{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return FileInfo{}, notExist(err)
	}
	return FileInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Touch sets the modification time to now (file times are on the real
// clock).
func (l *Local) Touch(ctx context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	now := clock.Real().Now()
	return notExist(os.Chtimes(p, now, now))
}

// Rename moves a file without replacing an existing target.
func (l *Local) Rename(ctx context.Context, from, to string) error {
	pf, err := l.path(from)
	if err != nil {
		return err
	}
	pt, err := l.path(to)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(pt), 0o700); err != nil {
		return err
	}
	// link+unlink refuses to replace an existing target, unlike rename(2).
	if err := os.Link(pf, pt); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("rename %s: %w", to, ErrExist)
		}
		return notExist(immutableFileError("rename", from, pf, err))
	}
	l.pend.add("", filepath.Dir(pt))
	l.pend.add("", filepath.Dir(pf))
	return notExist(os.Remove(pf))
}

// Remove deletes a file; a missing file is not an error.
func (l *Local) Remove(ctx context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return immutableFileError("remove", name, p, err)
	}
	l.pend.add("", filepath.Dir(p))
	return nil
}

// List walks dir recursively; a missing dir lists nothing.
func (l *Local) List(ctx context.Context, dir string, fn func(FileInfo) error) error {
	p, err := l.path(dir)
	if err != nil {
		return err
	}
	err = filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(l.root, fp)
		if err != nil {
			return err
		}
		return fn(FileInfo{Name: filepath.ToSlash(rel), Size: fi.Size(), ModTime: fi.ModTime()})
	})
	return err
}

// ListNames is List without the sizes and times: it reads only
// directories, never a file's inode, so listing millions of chunks on a
// cold cache is not millions of random reads. It is not part of Backend;
// GC and verify use it when available and Stat the few files they need.
func (l *Local) ListNames(ctx context.Context, dir string, fn func(name string) error) error {
	p, err := l.path(dir)
	if err != nil {
		return err
	}
	return filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		rel, err := filepath.Rel(l.root, fp)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel))
	})
}

// RemoveStaleTemp deletes temporary files older than cutoff left by killed
// writers. It is not part of Backend; GC calls it when available.
func (l *Local) RemoveStaleTemp(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	err := filepath.WalkDir(l.root, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().Before(cutoff) {
			if os.Remove(fp) == nil {
				n++
			}
		}
		return nil
	})
	return n, err
}

// RemoveEmptyDirs deletes the empty directories below dir (not dir
// itself). A Save racing with it creates its directory again. It is not
// part of Backend; GC calls it when available.
func (l *Local) RemoveEmptyDirs(ctx context.Context, dir string) (int, error) {
	p, err := l.path(dir)
	if err != nil {
		return 0, err
	}
	var dirs []string
	err = filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && fp != p {
			dirs = append(dirs, fp)
		}
		return ctx.Err()
	})
	n := 0
	for i := len(dirs) - 1; i >= 0; i-- { // deepest first
		if os.Remove(dirs[i]) == nil { // fails unless empty
			l.pend.add("", filepath.Dir(dirs[i]))
			n++
		}
	}
	return n, err
}

// Exists reports whether the root directory exists.
func (l *Local) Exists() bool {
	fi, err := os.Stat(l.root)
	return err == nil && fi.IsDir()
}
