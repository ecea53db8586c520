package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// Lock kinds. Backups hold shared locks; GC holds the exclusive lock. A
// shared lock does not keep GC out: it tells GC since when the backup may
// have reused chunks, so GC's cut-off moves before that time.
const (
	LockShared    = "shared"
	LockExclusive = "exclusive"
)

const (
	lockRefresh = time.Minute
	// LockStaleAfter is how long a lock may go unrefreshed before others
	// ignore it (its holder was killed on another host).
	LockStaleAfter = 5 * time.Minute
)

// LockInfo is the content of locks/<id>.
type LockInfo struct {
	Kind     string    `json:"kind"`
	Hostname string    `json:"hostname"`
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	// Refreshed is the lock file's modification time (not stored).
	Refreshed time.Time `json:"-"`
	name      string
}

// Lock is a held lock; Release it when done.
type Lock struct {
	r      *Repository
	Info   LockInfo
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (r *Repository) readLocks(ctx context.Context) ([]LockInfo, error) {
	var infos []LockInfo
	err := r.be.List(ctx, "locks", func(fi storage.FileInfo) error {
		b, err := r.be.Load(ctx, fi.Name)
		if errors.Is(err, storage.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		var li LockInfo
		if json.Unmarshal(b, &li) != nil {
			li = LockInfo{Kind: "invalid"}
		}
		li.Refreshed, li.name = fi.ModTime, fi.Name
		infos = append(infos, li)
		return nil
	})
	return infos, err
}

// stale reports whether a lock's holder is gone: not refreshed for
// LockStaleAfter, or a process of this host that no longer exists.
func (r *Repository) stale(li LockInfo) bool {
	if r.now().Sub(li.Refreshed) > LockStaleAfter {
		return true
	}
	host, _ := os.Hostname()
	if li.Hostname == host && li.PID > 0 {
		if err := syscall.Kill(li.PID, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
	}
	return false
}

// ActiveLocks returns the locks whose holders are alive.
func (r *Repository) ActiveLocks(ctx context.Context) ([]LockInfo, error) {
	all, err := r.readLocks(ctx)
	if err != nil {
		return nil, err
	}
	var live []LockInfo
	for _, li := range all {
		if !r.stale(li) && li.Kind != "invalid" {
			live = append(live, li)
		}
	}
	return live, nil
}

// Lock takes a lock of the given kind. An exclusive lock fails with
// ErrLocked while another live exclusive lock exists.
func (r *Repository) Lock(ctx context.Context, kind string) (*Lock, error) {
	host, _ := os.Hostname()
	l := &Lock{r: r, Info: LockInfo{Kind: kind, Hostname: host, PID: os.Getpid(), Started: r.now().UTC(),
		name: "locks/" + randomHex(8)}}
	b, _ := json.Marshal(l.Info)
	if err := r.be.Save(ctx, l.Info.name, b); err != nil {
		return nil, fmt.Errorf("create lock: %w", err)
	}
	if kind == LockExclusive {
		live, err := r.ActiveLocks(ctx)
		if err != nil {
			_ = r.be.Remove(ctx, l.Info.name)
			return nil, err
		}
		for _, li := range live {
			if li.Kind == LockExclusive && li.name != l.Info.name {
				_ = r.be.Remove(ctx, l.Info.name)
				return nil, fmt.Errorf("%w by %s pid %d since %s", ErrLocked, li.Hostname, li.PID, li.Started.Format(time.RFC3339))
			}
		}
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	l.wg.Add(1)
	go l.refresh(rctx)
	return l, nil
}

func (l *Lock) refresh(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(lockRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = l.r.be.Touch(ctx, l.Info.name)
		}
	}
}

// Release removes the lock.
func (l *Lock) Release() error {
	l.cancel()
	l.wg.Wait()
	return l.r.be.Remove(context.Background(), l.Info.name)
}

// removeStaleLocks deletes the lock files of dead holders.
func (r *Repository) removeStaleLocks(ctx context.Context) (int, error) {
	all, err := r.readLocks(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, li := range all {
		if r.stale(li) {
			if err := r.be.Remove(ctx, li.name); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
