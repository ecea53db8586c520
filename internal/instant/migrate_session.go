package instant

import (
	"context"
	"errors"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// ErrTargets means the images named for a migration do not fit the
// session: a disk it does not have, or only some disks of a running VM.
var ErrTargets = errors.New("migration targets")

// MigrateOptions say where a session's disks go (MigrateSession).
type MigrateOptions struct {
	// Targets maps disk numbers to production images (raw, or qcow2 for
	// a .qcow2 name, as pipeline.TargetFormat decides).
	Targets map[int]string
	// Store opens the repository for an offline migration (the point
	// is read from it, the redo data applied); done is called after.
	Store func(ctx context.Context) (s repo.PointReader, done func(), err error)
	// KeepRedo keeps the session and its redo data afterwards; otherwise
	// they are discarded (Discard) once the images are written.
	KeepRedo bool
	// Force migrates a session that has clients other than its own VM
	// (stopping the session cuts them off); otherwise MigrateSession
	// refuses with an *InUseError naming them, before it changes anything.
	Force bool
}

// Migrated is what MigrateSession did.
type Migrated struct {
	Record Record
	// Live: the VM was mirrored onto the images while it ran and runs on
	// from them (Record.QEMU is its process).
	Live bool
	// Written and FromRedo count an offline migration's data bytes
	// written and, of those, the bytes the VM had written.
	Written, FromRedo int64
	// Discarded is set unless KeepRedo.
	Discarded *Discarded
}

// MigrateSession moves session id's VM to production storage, then ends
// the session. A session whose VM (started with VMOptions) runs is
// migrated live: QEMU mirrors every disk onto its image and pivots onto
// it, the VM keeps running from production storage, and the exports go.
// A session's libvirt domain (LibvirtOptions) is migrated live the same
// way through libvirt (virDomainBlockCopy, migrateDomain).
// Otherwise the session is stopped first and each target is written from
// the point with the redo data applied (Migrate). Either way, unless
// o.Force, a session with other clients is refused (Stop).
func (r Registry) MigrateSession(ctx context.Context, id string, o MigrateOptions) (Migrated, error) {
	rec, err := r.Load(id)
	if err != nil {
		return Migrated{}, err
	}
	if !rec.Discarded.IsZero() {
		return Migrated{}, fmt.Errorf("session %s has no redo data any more (%s)", rec.ID, rec.State())
	}
	live := rec.State() == "serving" && (rec.VMRunning() || rec.Libvirt != nil && !rec.Libvirt.Removed)
	if err := checkTargets(rec, o.Targets, live); err != nil {
		return Migrated{}, err
	}
	res := Migrated{Record: rec, Live: live}
	if live {
		if err := r.checkIdle(ctx, rec.ID, o.Force); err != nil {
			return res, err
		}
		migrate := r.migrateLive
		if rec.Libvirt != nil {
			migrate = r.migrateDomain
		}
		if err := migrate(ctx, &res.Record, o.Targets); err != nil {
			return res, err
		}
	}
	if _, err := r.Stop(ctx, rec.ID, StopOptions{Force: o.Force}); err != nil {
		if live {
			return res, fmt.Errorf("the VM runs from its new images; the session serves on: %w", err)
		}
		return res, err
	}
	if !live {
		if res.Written, res.FromRedo, err = migrateOffline(ctx, rec, o); err != nil {
			return res, err
		}
	}
	if o.KeepRedo {
		return res, nil
	}
	res.Record.Migrated = res.Record.Migrated || live
	d, err := r.Discard(ctx, res.Record)
	if err != nil {
		return res, err
	}
	res.Discarded = &d
	return res, nil
}

// checkIdle refuses, unless force, when session id has clients (other
// than its VM).
func (r Registry) checkIdle(ctx context.Context, id string, force bool) error {
	if force {
		return nil
	}
	clients, err := r.Clients(ctx, id)
	if err != nil {
		return fmt.Errorf("%w: its clients are not known; force it to go ahead anyway", err)
	}
	if len(clients) > 0 {
		return &InUseError{Session: id, Clients: clients}
	}
	return nil
}

// checkTargets checks that every target names a disk of the session and,
// for a running VM, that every disk has one.
func checkTargets(rec Record, targets map[int]string, live bool) error {
	for n := range targets {
		if n < 0 || n >= len(rec.Disks) {
			return fmt.Errorf("%w: session %s has %d disk(s); disk %d does not exist", ErrTargets, rec.ID, len(rec.Disks), n)
		}
	}
	if live && len(targets) != len(rec.Disks) {
		return fmt.Errorf("%w: a running VM moves as a whole: give one target per disk", ErrTargets)
	}
	return nil
}

// migrateLive mirrors every disk of the running VM onto its target and
// records that the VM moved (so stopping the session leaves it running).
func (r Registry) migrateLive(ctx context.Context, rec *Record, targets map[int]string) error {
	for n := range rec.Disks {
		if err := migrateLive(ctx, *rec, n, targets[n], rec.Disks[n].Size); err != nil {
			return fmt.Errorf("migrate session %s disk %d: %w", rec.ID, n, err)
		}
	}
	rec.Migrated = true
	return r.Save(*rec)
}

// migrateOffline writes each target of a stopped session from its redo
// data and the point.
func migrateOffline(ctx context.Context, rec Record, o MigrateOptions) (written, fromRedo int64, err error) {
	s, closeStore, err := o.Store(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer closeStore()
	for n := range rec.Disks {
		p, ok := o.Targets[n]
		if !ok {
			continue
		}
		st, err := Migrate(ctx, s, rec.RedoDir, n, p)
		if err != nil {
			return written, fromRedo, fmt.Errorf("migrate session %s disk %d to %s: %w", rec.ID, n, p, err)
		}
		written, fromRedo = written+st.Written, fromRedo+st.FromRedo
	}
	return written, fromRedo, nil
}
