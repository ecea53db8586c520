package instant

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/holdfast-backup/holdfast/internal/background"
)

// StartTimeout is how long Start waits for a session's exports to answer.
const StartTimeout = 60 * time.Second

// StartOptions start a session in the background (Registry.Start).
type StartOptions struct {
	// RedoDir is where the session's redo directory goes (an absolute
	// path): its subdirectory named after a new session ID, or RedoDir
	// itself when it is a stopped session's redo directory, which
	// restarts that session (same ID, export paths and NFS file handles).
	RedoDir string
	// Command returns the serving process (`holdfast instant-recovery
	// serve … --id ID --redo-dir DIR`, which runs Serve) for the session's
	// ID and redo directory. Start sets its output and session.
	Command func(id, redoDir string) (*exec.Cmd, error)
}

// Start runs a session's serving process in the background
// (background.Start), in a session of its own with its output in
// serve.log in the redo directory, and waits (on the registry's clock, at
// most StartTimeout) until the process records that its exports answer.
// If the process exits first, the error quotes the end of its log; if it
// does not answer in time, or ctx ends, the process gets SIGTERM.
func (r Registry) Start(ctx context.Context, o StartOptions) (Record, error) {
	redo, id, err := r.SessionDir(o.RedoDir, NewID())
	if err != nil {
		return Record{}, err
	}
	if rec, err := r.Load(id); err == nil && rec.State() == "serving" {
		return Record{}, fmt.Errorf("session %s is already serving from %s", rec.ID, redo)
	}
	logPath := filepath.Join(redo, "serve.log")
	cmd, err := o.Command(id, redo)
	if err != nil {
		return Record{}, err
	}
	var rec Record
	err = background.Start(ctx, background.Options{Cmd: cmd, LogPath: logPath, What: "the recovery session",
		Timeout: StartTimeout, Clock: r.Clock, Ready: func() bool {
			var err error
			rec, err = r.Load(id)
			return err == nil && rec.State() == "serving"
		}})
	if err != nil {
		return Record{}, err
	}
	return rec, nil
}
