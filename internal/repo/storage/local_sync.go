package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// maxPendingFiles bounds the memory spent remembering unsynced files; past
// it, Sync flushes the whole file system instead.
const maxPendingFiles = 16384

// syncWorkers fsync files in parallel: the device sees one deep queue
// instead of one flush at a time.
const syncWorkers = 8

// pending is what this process changed since the last Sync.
type pending struct {
	mu       sync.Mutex
	files    []string
	dirs     map[string]struct{}
	overflow bool
}

func (p *pending) add(file, dir string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dirs == nil {
		p.dirs = make(map[string]struct{})
	}
	// The directory itself may be new: its entry lives in its parent.
	p.dirs[dir] = struct{}{}
	p.dirs[filepath.Dir(dir)] = struct{}{}
	if file == "" || p.overflow {
		return
	}
	if len(p.files) >= maxPendingFiles {
		p.overflow, p.files = true, nil
		return
	}
	p.files = append(p.files, file)
}

func (p *pending) take() ([]string, map[string]struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, d, o := p.files, p.dirs, p.overflow
	p.files, p.dirs, p.overflow = nil, nil, false
	return f, d, o
}

// Sync makes what this backend wrote durable: it fsyncs the files saved
// since the last Sync (in parallel), then their directories. Only this
// repository's files are flushed, so unrelated dirty data on the same file
// system (VM images) does not slow a backup down. After very many saves it
// falls back to syncfs(2).
func (l *Local) Sync(ctx context.Context) error {
	files, dirs, overflow := l.pend.take()
	if overflow {
		return l.withRoot(func(d *os.File) error { return unix.Syncfs(int(d.Fd())) })
	}
	if err := fsyncAll(ctx, files); err != nil {
		return err
	}
	for d := range dirs {
		if err := fsyncPath(d); err != nil {
			return err
		}
	}
	// The root last: unlike the others it must exist (a vanished
	// repository is an error).
	return l.withRoot(func(d *os.File) error { return d.Sync() })
}

func fsyncAll(ctx context.Context, files []string) error {
	ch := make(chan string)
	errs := make(chan error, syncWorkers)
	var wg sync.WaitGroup
	for w := 0; w < syncWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for f := range ch {
				if err := fsyncPath(f); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		ch <- f
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// fsyncPath syncs a file or directory; one removed meanwhile (by GC) needs
// no syncing.
func fsyncPath(p string) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}

// withRoot runs a sync call on the open repository directory.
func (l *Local) withRoot(fn func(*os.File) error) error {
	d, err := os.Open(l.root)
	if err != nil {
		return fmt.Errorf("sync %s: %w", l.root, err)
	}
	defer d.Close()
	if err := fn(d); err != nil {
		return fmt.Errorf("sync %s: %w", l.root, err)
	}
	return nil
}
