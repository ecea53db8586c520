package instant

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/holdfast-backup/holdfast/internal/export/nfs"
	"github.com/holdfast-backup/holdfast/internal/nbd"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
)

// Options configure a recovery session.
type Options struct {
	ID       string // "" : a new one
	Store    repo.PointReader
	Point    *repo.Manifest
	RepoName string // for the record (path or agent)
	RedoDir  string // the session's redo data: RedoDir/disk-N
	// NBD serves one export per disk ("disk-N") on this address ("":
	// none).
	NBD string
	// NBDTLS, if set, requires TLS on the NBD exports (nbds:// URLs).
	NBDTLS *tls.Config
	// NFS, if set, serves the session's export /holdfast/<id> on these
	// listeners (see nfs.Listen).
	NFS     *nfs.Listeners
	NFSHost string // host part of the nfs:// URLs (default 127.0.0.1)
	// VMName names the VM the NFS export lays out for ESXi (NAME.vmx,
	// its display name); "": the name the point recorded.
	VMName   string
	Allow    []netip.Prefix
	Cache    int64 // chunk cache per disk (bytes); 0: restorefs default
	Registry Registry
	Logger   *slog.Logger
	// VM, if set, starts QEMU on the NBD exports once they answer.
	VM *VMOptions
	// Libvirt, if set, defines and starts a libvirt domain on the NBD
	// exports once they answer (libvirt.go).
	Libvirt *LibvirtOptions
	// Ready is called once the exports answer, with the session record
	// (also saved in the registry).
	Ready func(Record)
	// Holder, if set, holds the point while the session lives (hold.go);
	// the session ID is the holder. The hold stays when a session that
	// can be restarted stops, unless ReleaseHold: then it ends with Serve.
	Holder      Holder
	ReleaseHold bool
	// NFSActive is how long an NFS client without an open connection
	// counts as a client after its last request (0: NFSActiveWindow).
	NFSActive time.Duration
}

// defaults fills the options left at zero.
func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ID == "" {
		o.ID = NewID()
	}
	if len(o.Allow) == 0 {
		o.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if o.NFSHost == "" {
		o.NFSHost = "127.0.0.1"
	}
}

// served is one disk of a running session.
type served struct {
	disk    *restorefs.Disk
	overlay *restorefs.Overlay
}

// session is a serving session: its options, disks and record, and its
// servers (for the clients they have).
type session struct {
	o     Options
	disks []served
	rec   Record

	nbd      *nbd.Server // the NBD exports for clients (nil: none)
	nfs      *nfs.Server // the NFS export (nil: none)
	vmSocket string      // the unix socket of the VM's own NBD connections
	closing  atomic.Bool // a stop is being decided: refuse new NBD clients
}

// Serve runs a session until ctx ends: it opens every disk of the point
// with its overlay, serves them, records the session and, on the way out,
// flushes the overlays and records the stop (the record and the redo data
// stay).
func Serve(ctx context.Context, o Options) (err error) {
	o.defaults()
	if err := os.MkdirAll(o.RedoDir, 0o700); err != nil {
		return err
	}
	s := &session{o: o, rec: Record{ID: o.ID, Point: o.Point.ID, VM: o.Point.VM, Repo: o.RepoName, RedoDir: o.RedoDir,
		PID: os.Getpid(), Started: o.Registry.clk().Now().UTC()}}
	if err := writePointInfo(o.RedoDir, o.Point); err != nil {
		return err
	}
	_, lerr := o.Registry.Load(o.ID)
	recorded := lerr == nil // a restart of a stopped session keeps its hold
	endHold, err := holdPoint(ctx, o)
	if err != nil {
		return fmt.Errorf("hold point %s: %w", o.Point.ID, err)
	}
	defer func() { endHold(o.ReleaseHold || !recorded) }()
	defer s.closeDisks(&err)
	if err := s.openDisks(ctx); err != nil {
		return err
	}
	errc := make(chan error, 4)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	if o.NBD != "" {
		shutdown, err := s.startNBD(sctx, errc)
		if err != nil {
			return err
		}
		defer shutdown()
	}
	if o.NFS != nil {
		defer os.RemoveAll(filepath.Join(o.RedoDir, ScratchDir)) // when the session ends: what the clients made goes
		if err := s.startNFS(sctx, errc); err != nil {
			return err
		}
	}
	if o.VM != nil {
		if err := s.startVM(ctx); err != nil {
			return err
		}
		defer s.stopVM()
	}
	if o.Libvirt != nil {
		if err := s.startDomain(ctx); err != nil {
			return err
		}
		defer s.stopDomain()
	}
	ctl, err := o.Registry.listenUnix(o.Registry.controlPath(o.ID))
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer os.Remove(o.Registry.controlPath(o.ID))
	go s.serveControl(sctx, ctl, stop)
	if err := o.Registry.Save(s.rec); err != nil {
		return err
	}
	recorded = true
	defer s.recordStop(&err)
	if o.Ready != nil {
		o.Ready(s.rec)
	}
	o.Logger.Info("instant recovery session serving", "id", s.rec.ID, "point", s.rec.Point, "vm", s.rec.VM)
	return waitEnd(sctx, errc)
}

// openDisks opens every disk of the point with its overlay.
func (s *session) openDisks(ctx context.Context) error {
	o := s.o
	for i := range o.Point.Disks {
		d, err := restorefs.OpenDisk(ctx, o.Store, o.Point, i, restorefs.Options{CacheBytes: o.Cache, Logger: o.Logger})
		if err != nil {
			return fmt.Errorf("disk %d: %w", i, err)
		}
		dir := filepath.Join(o.RedoDir, "disk-"+strconv.Itoa(i))
		ov, err := restorefs.OpenOverlay(dir, d, d.Size(), restorefs.OverlayOptions{})
		if err != nil {
			d.Close()
			return fmt.Errorf("disk %d: redo: %w", i, err)
		}
		s.disks = append(s.disks, served{disk: d, overlay: ov})
		s.rec.Disks = append(s.rec.Disks, DiskInfo{Index: i, Size: d.Size(), Redo: dir})
	}
	return nil
}

// closeDisks flushes the overlays (a failure becomes *err if that is nil)
// and closes the disks.
func (s *session) closeDisks(err *error) {
	for _, d := range s.disks {
		if cerr := d.overlay.Close(); cerr != nil && *err == nil {
			*err = fmt.Errorf("flush the redo data: %w", cerr)
		}
		d.disk.Close()
	}
}

// startNBD serves the disks over NBD (and to the session's VM, if it
// starts one, on its own socket) and puts the URLs in the record; the
// returned function shuts the servers down.
func (s *session) startNBD(ctx context.Context, errc chan<- error) (shutdown func(), err error) {
	exports := nbdExports(s.o, s.disks)
	srv, addr, err := serveNBD(ctx, s.o, exports, &s.closing, errc)
	if err != nil {
		return nil, err
	}
	s.nbd = srv
	servers := []*nbd.Server{srv}
	if s.o.VM != nil || s.o.Libvirt != nil {
		vsrv, path, err := serveVMNBD(ctx, s.o, exports, errc)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return nil, err
		}
		s.vmSocket = path
		servers = append(servers, vsrv)
	}
	s.rec.NBDAddr = addr
	scheme := "nbd"
	if s.o.NBDTLS != nil {
		scheme = "nbds"
	}
	for i := range s.rec.Disks {
		s.rec.Disks[i].NBDURL = fmt.Sprintf("%s://%s/disk-%d", scheme, addr, i)
	}
	return func() {
		shctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(shctx)
		}
		if s.vmSocket != "" {
			_ = os.Remove(s.vmSocket)
		}
	}, nil
}

// startNFS serves the session's NFS export and puts the URLs in the record.
func (s *session) startNFS(ctx context.Context, errc chan<- error) error {
	path := "/holdfast/" + s.o.ID
	srv := nfs.NewServer(nfs.Options{Allow: s.o.Allow, Logger: s.o.Logger, Clock: s.o.Registry.Clock})
	layout := esxiLayout(s.o.VMName, s.o.Point, s.disks)
	scratch := filepath.Join(s.o.RedoDir, ScratchDir)
	if err := writeScratch(scratch, layout); err != nil {
		return err
	}
	if err := srv.AddExport(nfsExport(path, s.o.Point, s.disks, layout, scratch)); err != nil {
		return err
	}
	s.rec.VMX = layout.Base + "/" + layout.VMX
	s.nfs = srv
	go func() { errc <- srv.Serve(ctx, *s.o.NFS) }()
	s.rec.NFSPath = path
	for i := range s.rec.Disks {
		s.rec.Disks[i].NFSURL = fmt.Sprintf("nfs://%s%s/disk-%d.img", s.o.NFSHost, path, i)
	}
	return nil
}

// startVM starts QEMU on the exports, with the configuration the point
// recorded for what the options leave at zero.
func (s *session) startVM(ctx context.Context) error {
	vo := *s.o.VM
	vo.FromPoint(s.o.Point.Notes)
	vo.nbdSocket = s.vmSocket
	cmd, err := startVM(ctx, s.o.Registry.clk(), s.rec, vo)
	if err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it when it ends
	s.rec.QEMU = cmd.Process.Pid
	s.rec.QEMUStart, _ = ProcStart(s.rec.QEMU)
	return nil
}

// stopVM stops the VM before its disks go — unless it was migrated.
func (s *session) stopVM() {
	if cur, err := s.o.Registry.Load(s.rec.ID); err != nil || !cur.Migrated {
		stopVM(s.o.Registry.clk(), s.rec.QEMU, s.rec.RedoDir)
	}
}

// recordStop records that the session stopped: the exports are gone, the
// record and the redo data stay. A failure becomes *err if that is nil.
func (s *session) recordStop(err *error) {
	rec := s.rec
	if cur, lerr := s.o.Registry.Load(rec.ID); lerr == nil {
		rec.Migrated, rec.ESXi = cur.Migrated, cur.ESXi // others recorded these
		if cur.Libvirt != nil {
			rec.Libvirt = cur.Libvirt
		}
	}
	rec.PID, rec.Stopped = 0, s.o.Registry.clk().Now().UTC()
	rec.Disks = append([]DiskInfo(nil), rec.Disks...)
	for i := range rec.Disks {
		rec.Disks[i].NBDURL, rec.Disks[i].NFSURL = "", ""
	}
	if serr := s.o.Registry.Save(rec); serr != nil && *err == nil {
		*err = serr
	}
}

// waitEnd waits until ctx ends (nil) or a server fails.
func waitEnd(ctx context.Context, errc <-chan error) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
}

// writePointInfo keeps the point's manifest with the redo data, so a
// migration or a restart knows what the redo applies to.
func writePointInfo(dir string, m *repo.Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "point.json"), b, 0o600)
}
