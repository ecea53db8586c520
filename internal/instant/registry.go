package instant

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Record describes a recovery session; the serving process writes it into
// the registry when its exports answer and removes it when it stops.
type Record struct {
	ID      string     `json:"id"`
	Point   string     `json:"point"`
	VM      string     `json:"vm"`
	Repo    string     `json:"repository"`
	RedoDir string     `json:"redo_dir"`
	PID     int        `json:"pid"`
	Started time.Time  `json:"started"`
	NBDAddr string     `json:"nbd_addr,omitempty"`
	NFSPath string     `json:"nfs_export,omitempty"`
	Disks   []DiskInfo `json:"disks"`
	QEMU    int        `json:"qemu_pid,omitempty"`
	LogFile string     `json:"log,omitempty"`
	Stopped time.Time  `json:"stopped,omitempty"` // zero while serving
	// Migrated: the session's VM was moved onto production storage with a
	// live mirror and keeps running when the session stops.
	Migrated bool `json:"migrated,omitempty"`
}

// State is "serving", "stopped", or "lost" (the process died without
// recording its stop).
func (r Record) State() string {
	switch {
	case !r.Stopped.IsZero():
		return "stopped"
	case Alive(r.PID):
		return "serving"
	}
	return "lost"
}

// DiskInfo is one served disk.
type DiskInfo struct {
	Index  int    `json:"index"`
	Size   int64  `json:"size"`
	NBDURL string `json:"nbd_url,omitempty"`
	NFSURL string `json:"nfs_url,omitempty"`
	Redo   string `json:"redo"` // the overlay directory
}

// Registry is a directory of session records (<id>.json): the sessions of
// this host, which Start, Stop, Discard and MigrateSession manage. Clock
// stamps and times them (nil: the real clock).
type Registry struct {
	Dir   string
	Clock clock.Clock
}

func (r Registry) clk() clock.Clock { return clock.Or(r.Clock) }

var idPattern = regexp.MustCompile(`^ir-[0-9a-f]{8,16}$`)

// NewID returns a fresh session ID.
func NewID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "ir-" + hex.EncodeToString(b[:])
}

// ValidID reports whether id looks like a session ID.
func ValidID(id string) bool { return idPattern.MatchString(id) }

func (r Registry) path(id string) string { return filepath.Join(r.Dir, id+".json") }

// Save writes a record atomically.
func (r Registry) Save(rec Record) error {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.path(rec.ID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.path(rec.ID))
}

// ErrNoSession means the registry has no such session.
var ErrNoSession = errors.New("no such instant recovery session")

// Load reads a record.
func (r Registry) Load(id string) (Record, error) {
	var rec Record
	if !ValidID(id) {
		return rec, fmt.Errorf("%q: %w (IDs look like ir-1a2b3c4d)", id, ErrNoSession)
	}
	b, err := os.ReadFile(r.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, fmt.Errorf("%s: %w", id, ErrNoSession)
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("session record %s: %w", id, err)
	}
	return rec, nil
}

// Remove deletes a record.
func (r Registry) Remove(id string) error {
	err := os.Remove(r.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// List returns the recorded sessions, oldest first.
func (r Registry) List() ([]Record, error) {
	entries, err := os.ReadDir(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !ValidID(id) {
			continue
		}
		rec, err := r.Load(id)
		if err != nil {
			continue
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// Alive reports whether a process exists.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
