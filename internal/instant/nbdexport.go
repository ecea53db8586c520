package instant

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"

	"github.com/holdfast-backup/holdfast/internal/allowlist"
	"github.com/holdfast-backup/holdfast/internal/nbd"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
)

// nbdExports are the session's NBD exports: one writable export per disk.
func nbdExports(o Options, disks []served) []nbd.Export {
	var exports []nbd.Export
	for i, d := range disks {
		ov, disk := d.overlay, d.disk
		exports = append(exports, nbd.Export{
			Name: exportName(i), Description: fmt.Sprintf("%s disk %d (instant recovery)", o.Point.VM, i),
			Size: ov.Size(), ReaderAt: ov, WriterAt: zeroWriter{ov}, Flush: ov.Flush,
			Allocation: func(_ context.Context, off, length int64) ([]nbd.Extent, error) {
				return allocation(disk, ov, off, length), nil
			},
		})
	}
	return exports
}

// exportName names the NBD export of disk i.
func exportName(i int) string { return "disk-" + strconv.Itoa(i) }

// serveNBD serves the exports on o.NBD to the clients in o.Allow, unless
// closing says the session is deciding to stop.
func serveNBD(ctx context.Context, o Options, exports []nbd.Export, closing *atomic.Bool, errc chan<- error) (*nbd.Server, string, error) {
	allow := o.Allow
	srv, err := nbd.NewServer(nbd.ServerOptions{Logger: o.Logger, Clock: o.Registry.Clock,
		Allow:     func(a net.Addr) bool { return !closing.Load() && allowlist.Contains(allow, a) },
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

// serveVMNBD serves the exports to the session's own VM on a unix socket
// in the registry directory (mode 0700), apart from the other clients.
func serveVMNBD(ctx context.Context, o Options, exports []nbd.Export, errc chan<- error) (*nbd.Server, string, error) {
	srv, err := nbd.NewServer(nbd.ServerOptions{Logger: o.Logger, Clock: o.Registry.Clock}, exports...)
	if err != nil {
		return nil, "", err
	}
	path := o.Registry.vmNBDPath(o.ID)
	ln, err := o.Registry.listenUnix(path)
	if err != nil {
		return nil, "", fmt.Errorf("NBD socket for the VM: %w", err)
	}
	go func() { errc <- srv.Serve(ctx, ln) }()
	return srv, path, nil
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
