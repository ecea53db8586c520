package instant

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/backends"
)

// StopTimeout is how long Stop waits for a serving process to end.
const StopTimeout = 60 * time.Second

// StopOptions say how Stop treats a session's clients.
type StopOptions struct {
	// Force stops a session that has clients (they are cut off);
	// otherwise Stop refuses with an *InUseError naming them.
	Force bool
}

// Stop stops session id if it serves and returns its record as the
// process left it (stopped, with its redo data). Unless o.Force, the
// process is asked on its control socket to stop only if no client (other
// than its own VM) uses its exports, and Stop returns an *InUseError
// (ErrInUse) naming them if one does; with o.Force it gets SIGTERM. Then
// Stop waits (on the registry's clock, at most StopTimeout) until the
// process is gone. A session that does not serve is returned as it is.
func (r Registry) Stop(ctx context.Context, id string, o StopOptions) (Record, error) {
	rec, err := r.Load(id)
	if err != nil || rec.State() != "serving" {
		return rec, err
	}
	if err := r.endProcess(ctx, rec, o.Force); err != nil {
		return rec, err
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

// endProcess asks a serving session's process to end: on its control
// socket unless forced (refused while it has clients), else with SIGTERM.
func (r Registry) endProcess(ctx context.Context, rec Record, force bool) error {
	if !force {
		rep, err := r.ask(ctx, rec.ID, "stop")
		if err != nil {
			return fmt.Errorf("%w: its clients are not known; force it to stop anyway", err)
		}
		if !rep.Stopping {
			return &InUseError{Session: rec.ID, Clients: rep.Clients}
		}
		return nil
	}
	if err := syscall.Kill(rec.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop session %s (pid %d): %w", rec.ID, rec.PID, err)
	}
	return nil
}

// Discarded is what Discard did.
type Discarded struct {
	// Left are the entries of the redo directory Holdfast did not create,
	// and the socket and logs of the session's VM while it runs: they
	// stay, and so does the directory.
	Left []string
	// VM is set when the session's VM runs on (after a live migration, or
	// started by a session whose process died): its socket and logs stay,
	// and so does the session's record (state "vm-running") until a
	// Discard after the VM ended removes them.
	VM bool
	// HoldErr, if set, is why the session's hold on its point stays
	// (release it with `holdfast holds release`); the session is over
	// either way.
	HoldErr error
}

// Discard deletes a stopped session's redo data — only what Holdfast
// created in the redo directory it made for the session, and not the
// socket and logs of the session's VM while that runs (Record.VMRunning)
// — forgets the session, and releases the session's hold on its point in
// the repository its record names (a local one). While the VM runs the
// record stays, marked Discarded, so `list` shows the VM and a later
// Discard removes the rest.
func (r Registry) Discard(ctx context.Context, rec Record) (Discarded, error) {
	keepVM := rec.VMRunning()
	// A migrated libvirt domain runs on, logging into the redo directory.
	left, err := RemoveRedo(rec.RedoDir, rec.ID, keepVM || rec.Libvirt != nil && rec.Migrated)
	if err != nil {
		return Discarded{}, fmt.Errorf("discard the redo data of session %s: %w", rec.ID, err)
	}
	d := Discarded{Left: left, VM: keepVM}
	if rec.Discarded.IsZero() { // the hold went with the first Discard
		d.HoldErr = releaseRecordedHold(ctx, rec)
	}
	if keepVM {
		if rec.Discarded.IsZero() {
			rec.Discarded = r.clk().Now().UTC()
		}
		return d, r.Save(rec)
	}
	return d, r.Remove(rec.ID)
}

// releaseRecordedHold ends the hold a local session keeps on its point, in
// the repository its record names.
func releaseRecordedHold(ctx context.Context, rec Record) error {
	if rec.Repo == "" {
		return errors.New("repository not found")
	}
	be, err := backends.Open(rec.Repo, backends.Options{Getenv: os.Getenv})
	if err != nil {
		return err
	}
	if ok, err := backends.Exists(ctx, be); err != nil || !ok {
		return errors.Join(errors.New("repository not found"), err)
	}
	return repo.ReleaseHold(ctx, be, rec.Point, rec.ID)
}
