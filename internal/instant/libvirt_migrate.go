package instant

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/libvirtconn"
	"github.com/holdfast-backup/holdfast/internal/pipeline"
)

// ErrDomainNotRunning means a live migration found the session's domain
// not running.
var ErrDomainNotRunning = errors.New("the session's libvirt domain is not running")

// copyPoll is how often a block copy's progress is read while it catches
// up.
const copyPoll = 50 * time.Millisecond

// migrateDomain moves every disk of the session's running libvirt domain
// onto its target (raw, or qcow2 for a .qcow2 name) with
// virDomainBlockCopy and pivots the domain onto it once the copy is ready
// (libvirt then names the target in the persistent definition too): the
// domain runs on, from local storage, and no longer uses the exports. Each
// pivoted disk is recorded as it goes (LibvirtRecord.MigratedTo); at the
// end the session is marked migrated, so its end leaves the domain alone.
func (r Registry) migrateDomain(ctx context.Context, rec *Record, targets map[int]string) error {
	lr := rec.Libvirt
	c, dom, err := lookupDomain(ctx, lr)
	if err != nil {
		return err
	}
	defer c.Close()
	if st, _, err := c.DomainGetState(dom, 0); err != nil || golibvirt.DomainState(st) != golibvirt.DomainRunning {
		return fmt.Errorf("%w: %s (state %d %v): start it, or stop the session and migrate offline", ErrDomainNotRunning, lr.Domain, st, err)
	}
	lr.MigratedTo = make([]string, len(lr.Targets))
	for n, dev := range lr.Targets {
		to := targets[n]
		format, err := pipeline.TargetFormat(to, "")
		if err != nil {
			return err
		}
		if err := createImage(ctx, to, format, rec.Disks[n].Size); err != nil {
			return err
		}
		if err := blockCopy(ctx, r.clk(), c, dom, dev, to, format); err != nil {
			return fmt.Errorf("migrate session %s disk %d (%s): %w", rec.ID, n, dev, err)
		}
		lr.MigratedTo[n] = to
		if err := r.Save(*rec); err != nil {
			return err
		}
	}
	rec.Migrated = true
	return r.Save(*rec)
}

// createImage creates an empty image of size bytes at to.
func createImage(ctx context.Context, to, format string, size int64) error {
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", format, to, strconv.FormatInt(size, 10)).CombinedOutput(); err != nil {
		return fmt.Errorf("create %s: %v: %s", to, err, out)
	}
	return nil
}

// fileDisk is the <disk> of an image file: a block copy's destination.
func fileDisk(path, format string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}}}
}

// blockCopy mirrors disk dev of the running domain onto the (created)
// image at to and pivots onto it once the copy is ready (the job reports
// cur == end and libvirt accepts the pivot). If it fails or ctx ends
// first, the copy is cancelled: the domain stays on its export.
func blockCopy(ctx context.Context, clk clock.Clock, c *libvirtconn.Conn, dom golibvirt.Domain, dev, to, format string) error {
	fd := fileDisk(to, format)
	dest, err := fd.Marshal()
	if err != nil {
		return err
	}
	if err := c.DomainBlockCopy(dom, dev, dest, nil, golibvirt.DomainBlockCopyReuseExt|golibvirt.DomainBlockCopyTransientJob); err != nil {
		return fmt.Errorf("start the copy to %s: %w", to, err)
	}
	cancel := func() { _ = c.DomainBlockJobAbort(dom, dev, 0) }
	for {
		found, _, _, cur, end, err := c.DomainGetBlockJobInfo(dom, dev, 0)
		switch {
		case err != nil:
			cancel()
			return fmt.Errorf("copy to %s: %w", to, err)
		case found == 0:
			return fmt.Errorf("the copy to %s ended before it was ready (see the domain's log)", to)
		case end > 0 && cur == end:
			err := c.DomainBlockJobAbort(dom, dev, golibvirt.DomainBlockJobAbortPivot)
			if err == nil {
				return checkSource(c, dom, dev, to)
			}
			var le golibvirt.Error
			if !errors.As(err, &le) || le.Code != uint32(golibvirt.ErrBlockCopyActive) { // else: not ready for the pivot yet
				cancel()
				return fmt.Errorf("pivot onto %s: %w", to, err)
			}
		}
		if err := clk.Sleep(ctx, copyPoll); err != nil {
			cancel()
			return err
		}
	}
}

// checkSource checks that the running domain's disk dev is the file to.
func checkSource(c *libvirtconn.Conn, dom golibvirt.Domain, dev, to string) error {
	x, err := c.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return err
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		return fmt.Errorf("domain XML after the pivot: %w", err)
	}
	if got := diskFile(d, dev); got != to {
		return fmt.Errorf("after the pivot disk %s reads %q, not %s", dev, got, to)
	}
	return nil
}

// diskFile is the file behind disk dev of d ("" for another source).
func diskFile(d libvirtxml.Domain, dev string) string {
	if d.Devices == nil {
		return ""
	}
	for _, x := range d.Devices.Disks {
		if x.Target != nil && x.Target.Dev == dev && x.Source != nil && x.Source.File != nil {
			return x.Source.File.File
		}
	}
	return ""
}
