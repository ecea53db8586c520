package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
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

// LockInfo describes a lock. The lock file's name carries it:
//
//	locks/<random 16 hex>.<kind>.<started, Unix nanoseconds>.<pid>.<hostname>
//
// so an exclusive lock is an empty file — gc can take it on a full disk.
// A shared lock file also holds the LockInfo as JSON (what the data mover
// reads, and what holdfast before lock names carried it wrote: such a
// lock, locks/<16 hex>, is read from its content).
type LockInfo struct {
	Kind     string    `json:"kind"`
	Hostname string    `json:"hostname"`
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	// NoTouch marks a backup that protects its chunks with this lock
	// rather than by touching them (object storage; see gc_notouch.go).
	NoTouch bool `json:"no_touch,omitempty"`
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
	// noTouch: found no gc, so its backup neither touches nor stamps;
	// touching: a no-touch lock that found a gc and touches as before.
	noTouch, touching bool
}

// lockHostname is the host name as lock names carry it: characters other
// than letters, digits, '-' and '.' become '_'.
func lockHostname() string {
	host, _ := os.Hostname()
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// lockName encodes a lock's information in its file name.
func lockName(li LockInfo) string {
	kind := li.Kind
	if li.NoTouch {
		kind = lockSharedNoTouch
	}
	return fmt.Sprintf("locks/%s.%s.%d.%d.%s", randomHex(8), kind, li.Started.UnixNano(), li.PID, li.Hostname)
}

// lockSharedNoTouch is a no-touch shared lock's kind in its name.
const lockSharedNoTouch = "shared-nt"

// parseLockName decodes a name lockName made; ok is false for other names.
func parseLockName(name string) (LockInfo, bool) {
	f := strings.SplitN(path.Base(name), ".", 5)
	if len(f) != 5 || len(f[0]) != 16 || (f[1] != LockShared && f[1] != LockExclusive && f[1] != lockSharedNoTouch) {
		return LockInfo{}, false
	}
	noTouch := f[1] == lockSharedNoTouch
	if noTouch {
		f[1] = LockShared
	}
	started, err1 := strconv.ParseInt(f[2], 10, 64)
	pid, err2 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil {
		return LockInfo{}, false
	}
	return LockInfo{Kind: f[1], NoTouch: noTouch, Started: time.Unix(0, started).UTC(), PID: pid, Hostname: f[4]}, true
}

func (r *Repository) readLocks(ctx context.Context) ([]LockInfo, error) {
	var infos []LockInfo
	err := r.be.List(ctx, "locks", func(fi storage.FileInfo) error {
		li, ok := parseLockName(fi.Name)
		if !ok { // the older form: the information is the content
			b, err := r.be.Load(ctx, fi.Name)
			if errors.Is(err, storage.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if json.Unmarshal(b, &li) != nil {
				li = LockInfo{Kind: "invalid"}
			}
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
	if li.Hostname == lockHostname() && li.PID > 0 {
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
	l := &Lock{r: r, Info: LockInfo{Kind: kind, Hostname: lockHostname(), PID: os.Getpid(), Started: r.now().UTC()}}
	l.Info.NoTouch = kind == LockShared && r.noTouchBackend()
	l.Info.name = lockName(l.Info)
	var content []byte // exclusive: empty, so that gc starts on a full disk
	if kind == LockShared {
		content, _ = json.Marshal(l.Info)
	}
	if err := r.be.Save(ctx, l.Info.name, content); err != nil {
		return nil, fmt.Errorf("create lock: %w", err)
	}
	if l.Info.NoTouch {
		if err := r.startNoTouch(ctx, l); err != nil {
			_ = r.be.Remove(ctx, l.Info.name)
			return nil, err
		}
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
	r.sealOldConfig(ctx)
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
	l.endNoTouch()
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
