package instant

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// StopTimeout is how long Stop waits for a serving process to end.
const StopTimeout = 60 * time.Second

// Stop stops session id if it serves — SIGTERM to its process, then a wait
// (on the registry's clock, at most StopTimeout) until the process is gone
// — and returns its record as the process left it (stopped, with its redo
// data). A session that does not serve is returned as it is.
func (r Registry) Stop(ctx context.Context, id string) (Record, error) {
	rec, err := r.Load(id)
	if err != nil || rec.State() != "serving" {
		return rec, err
	}
	if err := syscall.Kill(rec.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return rec, fmt.Errorf("stop session %s (pid %d): %w", id, rec.PID, err)
	}
	clk := r.clk()
	for deadline := clk.Now().Add(StopTimeout); Alive(rec.PID); {
		if clk.Now().After(deadline) {
			return rec, fmt.Errorf("session %s (pid %d) did not stop within %.0f s", id, rec.PID, StopTimeout.Seconds())
		}
		if err := clk.Sleep(ctx, 50*time.Millisecond); err != nil {
			return rec, err
		}
	}
	return r.Load(id)
}

// Discarded is what Discard did.
type Discarded struct {
	// Left are the entries of the redo directory Holdfast did not create
	// (or the files of a VM that runs on after a live migration): they
	// stay, and so does the directory.
	Left []string
	// HoldErr, if set, is why the session's hold on its point stays
	// (release it with `holdfast holds release`); the session is over
	// either way.
	HoldErr error
}

// Discard deletes a stopped session's redo data — only what Holdfast
// created in the redo directory it made for the session, and not the
// socket and logs of a VM that runs on after a live migration — forgets
// the session, and releases the session's hold on its point in the
// repository its record names (a local one).
func (r Registry) Discard(ctx context.Context, rec Record) (Discarded, error) {
	keepVM := rec.Migrated && Alive(rec.QEMU)
	left, err := RemoveRedo(rec.RedoDir, rec.ID, keepVM)
	if err != nil {
		return Discarded{}, fmt.Errorf("discard the redo data of session %s: %w", rec.ID, err)
	}
	if err := r.Remove(rec.ID); err != nil {
		return Discarded{}, err
	}
	return Discarded{Left: left, HoldErr: releaseRecordedHold(ctx, rec)}, nil
}

// releaseRecordedHold ends the hold a local session keeps on its point, in
// the repository its record names.
func releaseRecordedHold(ctx context.Context, rec Record) error {
	be := storage.NewLocal(rec.Repo)
	if rec.Repo == "" || !be.Exists() {
		return errors.New("repository not found")
	}
	return repo.ReleaseHold(ctx, be, rec.Point, rec.ID)
}
