package instant

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/holdfast-backup/holdfast/internal/allowlist"
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
	NFS      *nfs.Listeners
	NFSHost  string // host part of the nfs:// URLs (default 127.0.0.1)
	Allow    []netip.Prefix
	Cache    int64 // chunk cache per disk (bytes); 0: restorefs default
	Registry Registry
	Logger   *slog.Logger
	// VM, if set, starts QEMU on the NBD exports once they answer.
	VM *VMOptions
	// Ready is called once the exports answer, with the session record
	// (also saved in the registry).
	Ready func(Record)
	// Holder, if set, holds the point while the session lives (hold.go);
	// the session ID is the holder. The hold stays when a session that
	// can be restarted stops, unless ReleaseHold: then it ends with Serve.
	Holder      Holder
	ReleaseHold bool
}

// served is one disk of a running session.
type served struct {
	disk    *restorefs.Disk
	overlay *restorefs.Overlay
}

// Serve runs a session until ctx ends: it opens every disk of the point
// with its overlay, serves them, records the session and, on the way out,
// flushes the overlays and removes the record (the redo data stays).
func Serve(ctx context.Context, o Options) (err error) {
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
	if err := os.MkdirAll(o.RedoDir, 0o700); err != nil {
		return err
	}
	rec := Record{ID: o.ID, Point: o.Point.ID, VM: o.Point.VM, Repo: o.RepoName, RedoDir: o.RedoDir,
		PID: os.Getpid(), Started: time.Now().UTC()}
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
	var disks []served
	defer func() {
		for _, d := range disks {
			if cerr := d.overlay.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("flush the redo data: %w", cerr)
			}
			d.disk.Close()
		}
	}()
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
		disks = append(disks, served{disk: d, overlay: ov})
		rec.Disks = append(rec.Disks, DiskInfo{Index: i, Size: d.Size(), Redo: dir})
	}

	errc := make(chan error, 2)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	if o.NBD != "" {
		srv, addr, err := serveNBD(sctx, o, disks, errc)
		if err != nil {
			return err
		}
		defer func() {
			shctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(shctx)
		}()
		rec.NBDAddr = addr
		scheme := "nbd"
		if o.NBDTLS != nil {
			scheme = "nbds"
		}
		for i := range rec.Disks {
			rec.Disks[i].NBDURL = fmt.Sprintf("%s://%s/disk-%d", scheme, addr, i)
		}
	}
	if o.NFS != nil {
		path := "/holdfast/" + o.ID
		srv := nfs.NewServer(nfs.Options{Allow: o.Allow, Logger: o.Logger})
		if err := srv.AddExport(nfsExport(path, o.Point, disks)); err != nil {
			return err
		}
		go func() { errc <- srv.Serve(sctx, *o.NFS) }()
		rec.NFSPath = path
		for i := range rec.Disks {
			rec.Disks[i].NFSURL = fmt.Sprintf("nfs://%s%s/disk-%d.img", o.NFSHost, path, i)
		}
	}
	if o.VM != nil {
		vo := *o.VM
		vo.FromPoint(o.Point.Notes)
		cmd, err := StartVM(rec, vo)
		if err != nil {
			return err
		}
		go func() { _ = cmd.Wait() }() // reap it when it ends
		rec.QEMU = cmd.Process.Pid
		defer func() { // the VM must go before its disks do — unless it was migrated
			if cur, lerr := o.Registry.Load(rec.ID); lerr != nil || !cur.Migrated {
				StopVM(rec.QEMU, rec.RedoDir)
			}
		}()
	}
	if err := o.Registry.Save(rec); err != nil {
		return err
	}
	recorded = true
	defer func() { // stopped: the exports go, the record and the redo data stay
		if cur, lerr := o.Registry.Load(rec.ID); lerr == nil {
			rec.Migrated = cur.Migrated
		}
		rec.PID, rec.Stopped = 0, time.Now().UTC()
		for i := range rec.Disks {
			rec.Disks[i].NBDURL, rec.Disks[i].NFSURL = "", ""
		}
		if serr := o.Registry.Save(rec); serr != nil && err == nil {
			err = serr
		}
	}()
	if o.Ready != nil {
		o.Ready(rec)
	}
	o.Logger.Info("instant recovery session serving", "id", rec.ID, "point", rec.Point, "vm", rec.VM)
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

// serveNBD serves one writable export per disk.
func serveNBD(ctx context.Context, o Options, disks []served, errc chan<- error) (*nbd.Server, string, error) {
	var exports []nbd.Export
	for i, d := range disks {
		ov, disk := d.overlay, d.disk
		exports = append(exports, nbd.Export{
			Name: "disk-" + strconv.Itoa(i), Description: fmt.Sprintf("%s disk %d (instant recovery)", o.Point.VM, i),
			Size: ov.Size(), ReaderAt: ov, WriterAt: zeroWriter{ov}, Flush: ov.Flush,
			Allocation: func(_ context.Context, off, length int64) ([]nbd.Extent, error) {
				return allocation(disk, ov, off, length), nil
			},
		})
	}
	allow := o.Allow
	srv, err := nbd.NewServer(nbd.ServerOptions{Logger: o.Logger, Allow: func(a net.Addr) bool { return allowlist.Contains(allow, a) },
		TLSConfig: o.NBDTLS, RequireTLS: o.NBDTLS != nil}, exports...)
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", o.NBD)
	if err != nil {
		return nil, "", fmt.Errorf("NBD listen %s: %w", o.NBD, err)
	}
	go func() { errc <- srv.Serve(ctx, ln) }()
	return srv, ln.Addr().String(), nil
}

// zeroWriter gives the NBD server WRITE_ZEROES on the overlay.
type zeroWriter struct{ *restorefs.Overlay }

func (z zeroWriter) WriteZeroesAt(off, length int64) error { return z.Overlay.WriteZeroes(off, length) }

// allocation reports base:allocation: zero chunks of the point are holes
// unless the VM wrote there.
func allocation(d *restorefs.Disk, ov *restorefs.Overlay, off, length int64) []nbd.Extent {
	written := ov.Written()
	var out []nbd.Extent
	for _, e := range d.Allocated(off, length) {
		if !e.Zero || overlaps(written, e.Offset, e.Length) {
			out = append(out, nbd.Extent{Offset: e.Offset, Length: e.Length})
			continue
		}
		out = append(out, nbd.Extent{Offset: e.Offset, Length: e.Length, Flags: nbd.StateHole | nbd.StateZero})
	}
	return out
}

func overlaps(ext []restorefs.Extent, off, length int64) bool {
	for _, w := range ext {
		if w.Offset < off+length && off < w.Offset+w.Length {
			return true
		}
	}
	return false
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
