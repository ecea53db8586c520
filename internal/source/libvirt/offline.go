package libvirt

import (
	"context"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
)

// openFiles opens the disks of a shut-off domain from their files, each
// with the format the domain XML gives (never a probe), qcow2 with its
// backing chain. There is no backup job and no checkpoint: every allocated
// range is read and compared by hash.
func (s *Session) openFiles(ctx context.Context, doc string) error {
	if s.conn.Remote() {
		return fmt.Errorf("%w: %s: the disk files of a shut-off domain on a remote host are not read over SSH; start the domain or back it up on its host", ErrNotRunning, s.o.Locator)
	}
	var sizes []int64
	for _, d := range s.info.Disks {
		if d.File == "" {
			return fmt.Errorf("%w: %s: disk %s is not a local file or device, so a shut-off domain cannot be read", ErrNotRunning, s.o.Locator, d.Target)
		}
		o := file.Options{Format: d.Format}
		switch d.Format {
		case file.FormatQcow2:
			o.FollowBacking = true // the domain's XML, not the guest, names this image as qcow2
		case file.FormatRaw:
		default:
			return fmt.Errorf("domain %s: disk %s: format %q is not read yet (raw or qcow2)", s.o.Locator, d.Target, d.Format)
		}
		fd, err := file.Open(ctx, d.File, o)
		if err != nil {
			return fmt.Errorf("domain %s: disk %s: %w", s.o.Locator, d.Target, err)
		}
		s.Disks = append(s.Disks, &offlineDisk{Disk: fd})
		sizes = append(sizes, fd.Size())
	}
	s.Config = s.info.vmConfig(doc, sizes)
	s.BaseReason = "the domain is shut off: its disk files were read whole"
	s.Notes = map[string]string{"transport": string(source.TransportDirect),
		"transport_choice": "direct: the domain is shut off, its disk files were read"}
	if len(s.info.Skipped) > 0 {
		s.Notes["skipped_disks"] = joinSemi(s.info.Skipped)
	}
	return nil
}

// offlineDisk is a disk file of a shut-off domain: it tracks no changes,
// and says so.
type offlineDisk struct {
	source.Disk
}

// Changed says why no change list is known.
func (d *offlineDisk) Changed(context.Context, string) (source.Changes, error) {
	return source.Changes{Reason: "the domain is shut off: no checkpoint, its disk files are read whole"}, nil
}

// ChangeID is empty: the next backup of the running domain reads whole.
func (d *offlineDisk) ChangeID() string { return "" }

// Describe reports the file read with the direct transport.
func (d *offlineDisk) Describe() source.Info {
	info := d.Disk.Describe()
	info.Transport = source.TransportDirect
	return info
}
