package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/instant"
)

// StopTimeout is how long Unpublish waits for a serving process to end.
const StopTimeout = 60 * time.Second

// Env is what Unpublish and Cleanup work with: the records, the host and
// a clock (nil fields: Host{}, the real clock, no log). Holder, if set,
// releases the holds of the sessions cleaned up; without it they stay,
// with a warning in the log.
type Env struct {
	Records Records
	System  System
	Clock   clock.Clock
	Logger  *slog.Logger
	Holder  instant.Holder
}

func (e Env) bind(s *Session) *Session {
	s.recs, s.sys, s.log, s.holder, s.clk = e.Records, e.System, e.Logger, e.Holder, e.Clock
	if s.sys == nil {
		s.sys = Host{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Unpublish takes session ref (an ID or its mount directory) down: a
// serving process gets SIGTERM and undoes its steps itself; Unpublish
// waits until it has ended. What a dead process left (or what its Close
// could not undo) is then cleaned up from the record. It returns what the
// clean-up removed.
func Unpublish(ctx context.Context, e Env, ref string) ([]string, error) {
	s, err := e.Records.Find(ref)
	if err != nil {
		return nil, err
	}
	if s.alive() {
		if err := syscall.Kill(s.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return nil, fmt.Errorf("unpublish %s (pid %d): %w", s.ID, s.PID, err)
		}
		clk := clock.Or(e.Clock)
		for deadline := clk.Now().Add(StopTimeout); s.alive(); {
			if clk.Now().After(deadline) {
				return nil, fmt.Errorf("unpublish %s: pid %d did not end within %.0f s", s.ID, s.PID, StopTimeout.Seconds())
			}
			if err := clk.Sleep(ctx, 50*time.Millisecond); err != nil {
				return nil, err
			}
		}
	}
	s, err = e.Records.Load(s.ID)
	if errors.Is(err, ErrNoSession) {
		return nil, nil // the process undid everything
	}
	if err != nil {
		return nil, err
	}
	return e.cleanup(ctx, s)
}

// cleanup undoes the steps of a session whose process is gone.
func (e Env) cleanup(ctx context.Context, s *Session) ([]string, error) {
	if s.alive() {
		return nil, fmt.Errorf("publish session %s: pid %d still serves it", s.ID, s.PID)
	}
	e.bind(s)
	removed, err := s.undo(ctx)
	if err != nil {
		return removed, err
	}
	_ = os.Remove(e.Records.LogPath(s.ID))
	return removed, e.Records.Remove(s.ID)
}

// Cleanup removes what publish processes that are gone (killed) left
// behind — mounts, volume group activations, partition devices, loop
// devices, FUSE mounts, directories — from their records, and the
// records. Sessions whose process runs are left alone. It returns what
// it removed; it goes on with the next session when one fails.
func Cleanup(ctx context.Context, e Env) ([]string, error) {
	all, err := e.Records.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, s := range all {
		if s.alive() {
			continue
		}
		did, err := e.cleanup(ctx, s)
		for _, d := range did {
			removed = append(removed, s.ID+": "+d)
		}
		if err != nil {
			errs = append(errs, err)
		} else {
			removed = append(removed, s.ID+": record")
		}
	}
	return removed, errors.Join(errs...)
}
