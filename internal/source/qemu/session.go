package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/holdfast-backup/holdfast/internal/qmp"
	"github.com/holdfast-backup/holdfast/internal/source"
	nbdsource "github.com/holdfast-backup/holdfast/internal/source/nbd"
)

// Session is one prepared point-in-time snapshot of a VM's disks.
type Session struct {
	// Disks are the VM's disks, in a stable order, ready to be read.
	Disks []source.Disk
	// Guest says whether the guest file systems were frozen, or why not.
	Guest string
	// Transport is the mode used; TransportNote explains the choice.
	Transport     source.Transport
	TransportNote string
	// Cleaned lists leftovers of a killed run that were removed.
	Cleaned []string
	// Config is the VM's configuration as QEMU reports it, for recovery:
	// vm_memory_mib, vm_cpus, vm_nics (comma-separated NIC models). Keys
	// QEMU could not answer are missing.
	Config map[string]string

	c        *qmp.Client
	o        Options
	runDir   string
	vm       []vmDisk
	plans    []bitmapPlan
	fleeced  int
	overlaid int
	snapped  bool
	srv      *nbdServer
	exported int
}

// Prepare connects to the VM's QMP socket and takes the snapshot. On error
// everything it created is removed again.
func Prepare(ctx context.Context, o Options) (*Session, error) {
	o.defaults()
	if _, err := source.ParsePreference(string(o.Transport)); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := qmp.Dial(dctx, o.QMP)
	if err != nil {
		return nil, fmt.Errorf("connect to QMP %s (is the VM running, and is this socket free for Holdfast?): %w", o.QMP, err)
	}
	s := &Session{c: c, o: o, runDir: o.RunDir}
	if s.runDir == "" {
		s.runDir = filepath.Join(filepath.Dir(o.QMP), "."+filepath.Base(o.QMP)+".holdfast")
	}
	if err := s.prepare(ctx); err != nil {
		if rerr := s.Release(ctx, false); rerr != nil {
			err = fmt.Errorf("%w (cleanup: %v)", err, rerr)
		}
		return nil, err
	}
	return s, nil
}

func (s *Session) prepare(ctx context.Context) error {
	var err error
	if s.Cleaned, err = cleanupLeftovers(ctx, s.c, s.runDir); err != nil {
		return fmt.Errorf("clean up after an earlier run: %w", err)
	}
	for _, what := range s.Cleaned {
		s.o.Logger.Warn("removed leftover of an interrupted backup", "object", what)
	}
	if err := os.MkdirAll(s.runDir, 0o700); err != nil {
		return err
	}
	if s.vm, err = discover(ctx, s.c); err != nil {
		return err
	}
	s.Config = vmConfig(ctx, s.c)
	if s.Transport, s.TransportNote, err = chooseTransport(s.o.Transport, s.o.TLSDir != "", s.vm); err != nil {
		return err
	}
	for i, d := range s.vm {
		prev := ""
		if i < len(s.o.PreviousChangeIDs) {
			prev = s.o.PreviousChangeIDs[i]
		}
		p := planBitmaps(s.o.Tag, d.Bitmaps, prev)
		if err := settleStale(ctx, s.c, d.Node, p); err != nil {
			return fmt.Errorf("disk %s: %w", d.Device, err)
		}
		p.Stale = nil
		s.plans = append(s.plans, p)
	}
	for i, d := range s.vm {
		if s.Transport == source.TransportDirect {
			break
		}
		if err := addFleece(ctx, s.c, s.runDir, i, d); err != nil {
			return err
		}
		s.fleeced++
	}
	if err := s.snapshot(ctx); err != nil {
		return err
	}
	return s.export(ctx)
}

// snapshot runs the one transaction that defines the restore point, with
// the guest frozen around it.
func (s *Session) snapshot(ctx context.Context) error {
	var acts []qmp.Action
	for i, d := range s.vm {
		acts = append(acts, bitmapActions(d, s.plans[i])...)
		if s.Transport == source.TransportDirect {
			acts = append(acts, snapshotAction(s.runDir, i, d))
		} else {
			acts = append(acts, fleeceAction(i, d))
		}
	}
	q := &quiescer{path: s.o.GuestAgent, timeout: s.o.FreezeTimeout}
	q.freeze(ctx)
	err := s.c.Transaction(ctx, acts)
	q.thaw(ctx)
	s.Guest = q.Result
	if err != nil {
		return fmt.Errorf("snapshot transaction: %w", err)
	}
	s.snapped = true
	if s.Transport == source.TransportDirect {
		s.overlaid = len(s.vm)
	}
	return nil
}

// export publishes every fleecing node over NBD and connects to it; for
// direct access it opens the base images and exports only the bitmaps.
func (s *Session) export(ctx context.Context) error {
	if s.Transport == source.TransportDirect {
		return s.exportDirect(ctx)
	}
	srv, err := startNBD(ctx, s.c, s.Transport, s.runDir, s.o.NBDHost, s.o.TLSDir)
	if err != nil {
		return err
	}
	s.srv = srv
	for i, d := range s.vm {
		p := s.plans[i]
		if err := addExport(ctx, s.c, i, fleeceNode(i), p.Base); err != nil {
			return err
		}
		s.exported++
		nd, err := nbdsource.Open(ctx, srv.url(exportName(i)), nbdsource.Options{TLS: s.o.ClientTLS,
			Bitmap: p.Base, ChangeID: p.New, PreviousChangeID: p.Base, Connections: s.o.Connections,
			Transport: srv.transport, Format: d.Format, Location: d.File})
		if err != nil {
			return fmt.Errorf("read export of disk %s: %w", d.Device, err)
		}
		s.Disks = append(s.Disks, &disk{Disk: nd, plan: p})
	}
	return nil
}

func (s *Session) exportDirect(ctx context.Context) error {
	for i, d := range s.vm {
		p := s.plans[i]
		url := ""
		if p.Base != "" {
			if s.srv == nil {
				srv, err := startNBD(ctx, s.c, source.TransportHotAdd, s.runDir, "", "")
				if err != nil {
					return err
				}
				s.srv = srv
			}
			if err := addExport(ctx, s.c, i, d.Node, p.Base); err != nil {
				return err
			}
			s.exported++
			url = s.srv.url(exportName(i))
		}
		dd, err := openDirect(ctx, d, p, url)
		if err != nil {
			return err
		}
		s.Disks = append(s.Disks, dd)
	}
	return nil
}

// Release closes the exports and removes every object the session made.
// committed says whether the restore point was written: only then is the
// frozen bitmap dropped; otherwise the changes are merged back into it.
func (s *Session) Release(ctx context.Context, committed bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var errs []error
	for _, d := range s.Disks {
		d.Close()
	}
	s.Disks = nil
	for i := 0; i < s.exported; i++ {
		errs = append(errs, removeExport(ctx, s.c, exportID(i)))
	}
	if s.srv != nil {
		errs = append(errs, stopNBD(ctx, s.c))
	}
	keepRunDir := false
	for i := 0; i < s.overlaid; i++ {
		if err := commitOverlay(ctx, s.c, overlayNode(i), commitJob(i)); err != nil {
			errs = append(errs, err)
			keepRunDir = true // the guest still writes to the overlay there
			continue
		}
		os.Remove(overlayFile(s.runDir, i))
	}
	for i := 0; i < s.fleeced; i++ {
		errs = append(errs, removeFleece(ctx, s.c, s.runDir, i))
	}
	if s.snapped {
		for i, d := range s.vm {
			errs = append(errs, finishBitmaps(ctx, s.c, d.Node, s.plans[i], committed))
		}
	}
	if !keepRunDir {
		if err := os.RemoveAll(s.runDir); err != nil {
			errs = append(errs, err)
		}
	}
	s.exported, s.fleeced, s.overlaid, s.srv, s.snapped = 0, 0, 0, nil, false
	errs = append(errs, s.c.Close())
	return errors.Join(errs...)
}

// disk is an export of one VM disk; it explains a missing base bitmap.
type disk struct {
	*nbdsource.Disk
	plan bitmapPlan
}

// Changed reports the frozen bitmap's extents when it belongs to the
// previous restore point.
func (d *disk) Changed(ctx context.Context, prev string) (source.Changes, error) {
	if d.plan.Base == "" {
		return source.Changes{Reason: d.plan.Reason}, nil
	}
	return d.Disk.Changed(ctx, prev)
}
