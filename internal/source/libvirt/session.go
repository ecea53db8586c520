package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/holdfast-backup/holdfast/internal/libvirtconn"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	nbdsource "github.com/holdfast-backup/holdfast/internal/source/nbd"
)

// ErrNotRunning is returned for a shut-off domain whose disks cannot be
// read from files (a network disk).
var ErrNotRunning = errors.New("domain is not running")

// Options configure a backup session of one domain.
type Options struct {
	Locator Locator
	// Tag makes checkpoint names unique per repository
	// ("holdfast-<tag>-…").
	Tag string
	// PreviousChangeIDs are the change IDs of the previous restore point's
	// disks, by disk index ("" where there is none).
	PreviousChangeIDs []string
	// RunDir is the parent of the session's private directory (NBD socket,
	// scratch files) on the libvirt host; libvirtd must be able to write
	// there (default: the system temporary directory here, /var/tmp on a
	// remote host).
	RunDir string
	// Quiesce freezes the guest's file systems through the guest agent
	// around the start of the backup job (best effort: without an agent the
	// point is crash-consistent, with a warning).
	Quiesce bool
	// Connections per disk export (default 4).
	Connections int
	Logger      *slog.Logger
}

func (o *Options) defaults() {
	if o.Tag == "" {
		o.Tag = "default"
	}
	if o.Connections <= 0 {
		o.Connections = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Session is one running pull-mode backup job of a domain.
type Session struct {
	// Disks are the domain's backed-up disks, in the domain's order.
	Disks []source.Disk
	// Config records the domain (with its XML) for the manifest.
	Config *repo.VMConfig
	// Checkpoint is the checkpoint this backup created; Base the one its
	// changes are relative to ("" for a full read) and BaseReason why
	// there is none.
	Checkpoint, Base, BaseReason string
	// Notes are the manifest notes (transport, skipped disks).
	Notes map[string]string
	// Cleaned lists leftovers of a killed run that were removed.
	Cleaned []string
	// Quiesced says whether the guest was frozen for the point, or why not.
	Quiesced string

	conn   *libvirtconn.Conn
	l      *golibvirt.Libvirt
	dom    golibvirt.Domain
	o      Options
	dir    string
	tmp    *libvirtconn.TempDir
	info   domainInfo
	bases  []diskBase // per disk, from chooseBase
	begun  bool
	closed bool
}

// Prepare connects to libvirt and starts the backup job. On error
// everything it created is removed again.
func Prepare(ctx context.Context, o Options) (*Session, error) {
	o.defaults()
	c, err := libvirtconn.Dial(ctx, o.Locator.URI)
	if err != nil {
		return nil, err
	}
	s := &Session{conn: c, l: c.Libvirt, o: o}
	if err := s.prepare(ctx); err != nil {
		if rerr := s.Release(ctx, false); rerr != nil {
			err = fmt.Errorf("%w (cleanup: %v)", err, rerr)
		}
		return nil, err
	}
	return s, nil
}

func (s *Session) prepare(ctx context.Context) error {
	dom, err := s.l.DomainLookupByName(s.o.Locator.Domain)
	if err != nil {
		return fmt.Errorf("domain %s: %w", s.o.Locator, err)
	}
	s.dom = dom
	state, _, err := s.l.DomainGetState(dom, 0)
	if err != nil {
		return fmt.Errorf("domain %s: state: %w", s.o.Locator, err)
	}
	running := golibvirt.DomainState(state) == golibvirt.DomainRunning || golibvirt.DomainState(state) == golibvirt.DomainPaused
	doc, err := s.l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return fmt.Errorf("domain %s: XML: %w", s.o.Locator, err)
	}
	if s.info, err = parseDomain(doc); err != nil {
		return err
	}
	if len(s.info.Disks) == 0 {
		return fmt.Errorf("domain %s: no disk to back up (skipped: %v)", s.o.Locator, s.info.Skipped)
	}
	for _, why := range s.info.Skipped {
		s.o.Logger.Warn("disk not backed up", "domain", s.o.Locator.Domain, "disk", why)
	}
	if !running {
		return s.openFiles(ctx, doc)
	}
	if err := s.cleanupLeftover(ctx); err != nil {
		return err
	}
	if err := s.chooseBase(); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	var sizes []int64
	for i, d := range s.info.Disks {
		url := "nbd+unix:///" + d.Target + "?socket=" + s.socket()
		bitmap, base, reason, changeID := "", s.bases[i].base, s.bases[i].reason, s.Checkpoint
		if !d.tracked() {
			changeID = ""
		}
		if base != "" {
			bitmap = exportBitmap(d.Target)
		}
		nd, err := nbdsource.Open(ctx, url, nbdsource.Options{Bitmap: bitmap, ChangeID: changeID, PreviousChangeID: base,
			Connections: s.o.Connections, Dial: s.conn.Dialer(), Transport: source.TransportHotAdd, Format: d.Format, Location: location(d)})
		if err != nil {
			return fmt.Errorf("read export of disk %s: %w", d.Target, err)
		}
		s.Disks = append(s.Disks, &disk{Disk: nd, base: base, reason: reason, changeID: changeID})
		sizes = append(sizes, nd.Size())
	}
	s.Config = s.info.vmConfig(doc, sizes)
	s.Notes = map[string]string{"transport": string(source.TransportHotAdd),
		"transport_choice": transportChoice(s.conn.Remote()), "libvirt_checkpoint": s.Checkpoint, "guest_quiesce": s.Quiesced}
	if len(s.info.Skipped) > 0 {
		s.Notes["skipped_disks"] = joinSemi(s.info.Skipped)
	}
	if len(s.Cleaned) > 0 {
		s.Notes["cleaned_leftovers"] = joinSemi(s.Cleaned)
	}
	return nil
}

func location(d vmDisk) string {
	if d.File != "" {
		return d.File
	}
	return d.Target
}

func joinSemi(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

// pickBase decides whether the previous point's checkpoint prev can be
// the base of an incremental read, given the domain's checkpoints.
func pickBase(prev, prefix string, names []string) (base, reason string) {
	switch {
	case prev == "":
		return "", "no previous restore point with a libvirt checkpoint"
	case len(prev) <= len(prefix) || prev[:len(prefix)] != prefix:
		return "", fmt.Sprintf("the previous restore point's change id %q is not a Holdfast checkpoint of this repository", prev)
	}
	for _, n := range names {
		if n == prev {
			return prev, ""
		}
	}
	return "", fmt.Sprintf("checkpoint %s of the previous restore point is gone (domain moved, metadata lost or removed by hand)", prev)
}

// socket is the NBD server's unix socket.
func (s *Session) socket() string { return filepath.Join(s.dir, "nbd.sock") }

func exportBitmap(target string) string { return "holdfast-" + target }

// begin starts the pull-mode backup job with the new checkpoint.
func (s *Session) begin(ctx context.Context) error {
	tmp, err := s.conn.MkdirTemp(ctx, s.o.RunDir, runDirMark)
	if err != nil {
		return err
	}
	s.tmp, s.dir = tmp, tmp.Path
	dir := tmp.Path
	bx := backupXML(s.socket(), dir, s.info.Disks, s.bases)
	var cx golibvirt.OptString
	if s.Checkpoint != "" {
		cx = golibvirt.OptString{checkpointXML(s.Checkpoint, s.info.Disks)}
	}
	begin := func() error { return s.l.DomainBackupBegin(s.dom, bx, cx, 0) }
	s.Quiesced = "crash-consistent: quiescing not asked for"
	if s.o.Quiesce {
		q := &quiescer{fz: s.l, dom: s.dom, name: s.o.Locator.Domain, timeout: agentTimeout, log: s.o.Logger}
		s.Quiesced, err = q.run(ctx, begin)
	} else {
		err = begin()
	}
	if err != nil {
		return fmt.Errorf("domain %s: start backup job: %w", s.o.Locator, err)
	}
	s.begun = true
	return ctx.Err()
}

// Release ends the backup job and removes what the session made. committed
// says whether the restore point was written: then older Holdfast
// checkpoints go; otherwise the new checkpoint goes (its changes merge into
// its parent, so the next backup still sees them).
func (s *Session) Release(ctx context.Context, committed bool) error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, d := range s.Disks {
		d.Close()
	}
	s.Disks = nil
	if s.begun {
		errs = append(errs, s.endJob(ctx))
		errs = append(errs, s.settleCheckpoints(committed))
	}
	if s.tmp != nil {
		errs = append(errs, s.tmp.Remove(context.WithoutCancel(ctx)))
	}
	errs = append(errs, s.conn.Close())
	return errors.Join(errs...)
}

// disk is an export of one domain disk; it explains a missing base.
type disk struct {
	*nbdsource.Disk
	base, reason, changeID string
}

// ChangeID is the checkpoint this backup created ("" for a disk libvirt
// cannot checkpoint).
func (d *disk) ChangeID() string { return d.changeID }

// Changed reports the export's dirty bitmap when the backup is incremental
// from the previous point's checkpoint.
func (d *disk) Changed(ctx context.Context, prev string) (source.Changes, error) {
	if d.base == "" {
		return source.Changes{Reason: d.reason}, nil
	}
	return d.Disk.Changed(ctx, prev)
}

func transportChoice(remote bool) string {
	if remote {
		return "hotadd: libvirt pull-mode backup, NBD on a unix socket of the libvirt host read through the SSH connection"
	}
	return "hotadd: libvirt pull-mode backup, NBD on a local unix socket"
}
