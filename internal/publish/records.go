package publish

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/holdfast-backup/holdfast/internal/atomicfile"
	"github.com/holdfast-backup/holdfast/internal/instant"
)

// ErrNoSession means there is no such publish session.
var ErrNoSession = errors.New("no such publish session")

// DefaultStateDir is where sessions are recorded by default:
// /run/holdfast/publish as root (gone after a reboot, as the mounts are),
// else holdfast-publish-UID in the system temporary folder.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/run/holdfast/publish"
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("holdfast-publish-%d", os.Geteuid()))
}

// Records is a directory of session records (ID.json), with each
// session's private directory (ID/) beside its record.
type Records struct{ Dir string }

func (r Records) path(id string) string { return filepath.Join(r.Dir, id+".json") }

// SessionDir is session id's private directory (its FUSE mount is in it).
func (r Records) SessionDir(id string) string { return filepath.Join(r.Dir, id) }

// LogPath is the log of session id's serving process.
func (r Records) LogPath(id string) string { return filepath.Join(r.Dir, id+".log") }

// Prepare makes the records directory (0700) unless it exists and checks
// that it is private (ErrNotPrivate): call it before creating anything in
// it (the log of a serving process).
func (r Records) Prepare() error {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return err
	}
	return r.checkDir()
}

// checkDir refuses a records directory another user could write.
func (r Records) checkDir() error {
	dir, err := filepath.EvalSymlinks(r.Dir)
	if err != nil {
		return err
	}
	if err := checkPrivate(dir); err != nil {
		return fmt.Errorf("publish records: %w", err)
	}
	return nil
}

// Save writes a session's record atomically.
func (r Records) Save(s *Session) error {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(r.path(s.ID), b, 0o600)
}

// ErrNotPrivate is a state or mount directory that another user could
// change: a symbolic link, or a directory not owned by this user or
// writable by others. Records there are not trusted (cleanup would unmount,
// detach and deactivate what they name), nor is a mount made there.
var ErrNotPrivate = errors.New("is not a private directory of this user")

// checkPrivate returns ErrNotPrivate unless dir is a directory (not a
// symbolic link) owned by the effective user and writable by no one else.
func checkPrivate(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s: %w (not a directory)", dir, ErrNotPrivate)
	case !ok || int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s: %w (owned by uid %d)", dir, ErrNotPrivate, st.Uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s: %w (mode %o)", dir, ErrNotPrivate, fi.Mode().Perm())
	}
	return nil
}

// Load reads session id's record.
func (r Records) Load(id string) (*Session, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%q: %w (IDs look like pub-1a2b3c4d)", id, ErrNoSession)
	}
	if err := r.checkDir(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(r.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", id, ErrNoSession)
	}
	if err != nil {
		return nil, err
	}
	s := &Session{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("publish record %s: %w", id, err)
	}
	if s.ID != id {
		return nil, fmt.Errorf("publish record %s: it names session %q", id, s.ID)
	}
	s.recs = r
	return s, nil
}

// Remove deletes session id's record and its private directory (empty by
// then: Close removed what it held).
func (r Records) Remove(id string) error {
	if err := os.Remove(r.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// List returns the recorded sessions, oldest first; unreadable records
// are skipped.
func (r Records) List() ([]*Session, error) {
	entries, err := os.ReadDir(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := r.checkDir(); err != nil {
		return nil, err
	}
	var out []*Session
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !ValidID(id) {
			continue
		}
		s, err := r.Load(id)
		if err != nil {
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// Find returns the session whose ID is ref or whose mount directory is
// ref (a path).
func (r Records) Find(ref string) (*Session, error) {
	if ValidID(ref) {
		return r.Load(ref)
	}
	abs, err := filepath.Abs(ref)
	if err != nil {
		return nil, err
	}
	all, err := r.List()
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		if filepath.Clean(s.MountDir) == abs {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%s: %w (give a session ID or its mount directory)", ref, ErrNoSession)
}

// State is "publishing" (not ready yet), "published", or "lost": its
// process is gone (killed), and Cleanup removes what it left.
func (s *Session) State() string {
	if !s.alive() {
		return "lost"
	}
	if !s.Ready {
		return "publishing"
	}
	return "published"
}

// alive reports whether the session's process runs: a process with the
// recorded PID and start time. A PID reused since is not taken for it,
// and a record without a start time (or a process whose start cannot be
// read) counts as dead: Unpublish never signals a process it cannot tell
// is the session's, and the clean-up from the record checks each thing
// before it undoes it.
func (s *Session) alive() bool {
	if s.PIDStart == 0 || !instant.Alive(s.PID) {
		return false
	}
	st, err := instant.ProcStart(s.PID)
	return err == nil && st == s.PIDStart
}
