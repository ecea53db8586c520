package instant

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"syscall"
	"time"
)

// RedoMarker is the file that marks a directory as a session's redo
// directory, created by Holdfast: it names the session. Holdfast deletes
// only what is in a directory carrying the marker of the session it
// deletes for, and only the entries it creates there.
const RedoMarker = ".holdfast-redo.json"

// ErrNotRedoDir means a directory is not a redo directory Holdfast created
// for the session in question (no marker, or another session's): nothing in
// it is deleted.
var ErrNotRedoDir = errors.New("not a redo directory Holdfast created for this session")

// marker is the content of RedoMarker.
type marker struct {
	Session string    `json:"session"`
	Created time.Time `json:"created"`
}

// RedoSession returns the session whose redo directory dir is ("" and no
// error when dir carries no marker or does not exist).
func RedoSession(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, RedoMarker))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redo directory %s: %w", dir, err)
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil || !ValidID(m.Session) {
		return "", fmt.Errorf("redo directory %s: %s: %w", dir, RedoMarker, ErrNotRedoDir)
	}
	return m.Session, nil
}

// SessionDir returns the redo directory of session id given --redo-dir
// dir, and the session it belongs to: dir itself when Holdfast made it for
// a session (restarting that session: its ID is returned, whatever id is),
// else the subdirectory dir/id — resumed if it is id's, created (with its
// marker) if it does not exist. dir itself may hold anything else: it is
// never deleted, nor is anything in it but the session subdirectory.
func (r Registry) SessionDir(dir, id string) (path, session string, err error) {
	if !ValidID(id) {
		return "", "", fmt.Errorf("session ID %q: %w", id, ErrNoSession)
	}
	if s, err := RedoSession(dir); err != nil || s != "" {
		return dir, s, err
	}
	sub := filepath.Join(dir, id)
	switch s, err := RedoSession(sub); {
	case err != nil:
		return "", "", err
	case s == id:
		return sub, id, nil
	case s != "":
		return "", "", fmt.Errorf("%s belongs to session %s: %w", sub, s, ErrNotRedoDir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	if err := os.Mkdir(sub, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", "", fmt.Errorf("%s exists and Holdfast did not create it: %w", sub, ErrNotRedoDir)
		}
		return "", "", err
	}
	b, _ := json.Marshal(marker{Session: id, Created: r.clk().Now().UTC()})
	if err := os.WriteFile(filepath.Join(sub, RedoMarker), b, 0o600); err != nil {
		return "", "", err
	}
	return sub, id, nil
}

// vmFiles are the entries a session's VM (startVM) keeps in the redo
// directory; they stay while a migrated VM runs on.
var vmFiles = map[string]bool{"qmp.sock": true, "console.log": true, "qemu.log": true}

// consoleLog is the name of the logs of a libvirt domain's file-backed
// character devices (replaceChardevs): VM files too.
var consoleLog = regexp.MustCompile(`^console-[0-9]+\.log$`)

// redoEntries are the other entries Holdfast creates in a redo directory.
var (
	redoFiles   = map[string]bool{"point.json": true, "serve.log": true}
	diskPattern = regexp.MustCompile(`^disk-[0-9]+$`)
)

// RemoveRedo deletes session id's redo data from dir: only if dir carries
// id's marker, and only the entries Holdfast creates there (overlays,
// point.json, serve.log; the VM's socket and logs unless keepVM, for a VM
// that runs on after a live migration). The directory itself goes when
// nothing else is left in it. It returns the entries left in place (the
// marker then stays too).
func RemoveRedo(dir, id string, keepVM bool) (left []string, err error) {
	s, err := RedoSession(dir)
	if err != nil {
		return nil, err
	}
	if s != id {
		return nil, fmt.Errorf("%s (session %s): %w; left in place", dir, id, ErrNotRedoDir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		ours := redoFiles[name] || ((vmFiles[name] || consoleLog.MatchString(name)) && !keepVM) || (e.IsDir() && (diskPattern.MatchString(name) || name == ScratchDir))
		if name == RedoMarker {
			continue
		}
		if !ours {
			left = append(left, name)
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return nil, err
		}
	}
	if len(left) > 0 {
		sort.Strings(left)
		return left, nil // the marker stays with them: the directory is still the session's
	}
	if err := os.Remove(filepath.Join(dir, RedoMarker)); err != nil {
		return nil, err
	}
	return nil, os.Remove(dir)
}
