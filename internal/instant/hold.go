package instant

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Holder keeps a restore point from forget, retention and gc while a
// session uses it (repo.Hold): the repository itself, or the repository
// agent through the data mover (mover.Client).
type Holder interface {
	HoldPoint(ctx context.Context, h repo.Hold) error
	ReleaseHold(ctx context.Context, point, holder string) error
}

var _ Holder = (*repo.Repository)(nil)

// holdPoint holds the session's point (the holder is the session ID) and
// returns what ends the hold: release(true) releases it, release(false)
// keeps it for a restart of the stopped session. Without a Holder it does
// nothing.
func holdPoint(ctx context.Context, o Options) (release func(bool), err error) {
	if o.Holder == nil {
		return func(bool) {}, nil
	}
	host, _ := os.Hostname()
	h := repo.Hold{Point: o.Point.ID, Holder: o.ID, Who: fmt.Sprintf("%s pid %d", host, os.Getpid()),
		Why: fmt.Sprintf("instant recovery session %s of %s (redo data %s)", o.ID, o.Point.VM, o.RedoDir)}
	if err := o.Holder.HoldPoint(ctx, h); err != nil {
		return nil, err
	}
	return func(end bool) {
		if !end {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := o.Holder.ReleaseHold(rctx, h.Point, h.Holder); err != nil {
			o.Logger.Warn("instant recovery: release the hold on the point", "point", h.Point, "holder", h.Holder, "err", err)
		}
	}, nil
}
