package scan

import (
	"context"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/publish"
	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Published is a Mounter that publishes a point in this process with
// publish.Publish (o with Point set to the point scanned) and unpublishes
// it with Session.Close. Filesystems publish did not mount are reported
// as not scanned; what it could not publish (Session.Problems, and
// filesystems of a type it does not mount: see mountedOf) makes the scan
// not fully scanned.
func Published(o publish.Options) Mounter {
	return func(ctx context.Context, m *repo.Manifest) (*Mounted, error) {
		o := o
		o.Point = m
		s, err := publish.Publish(ctx, o)
		if err != nil {
			return nil, err
		}
		mnt := mountedOf(s.Filesystems, s.Problems)
		mnt.Release = s.Close
		return mnt, nil
	}
}

// mountedOf sorts a published point's filesystems into what is scanned
// and what is not. Swap, LVM physical volumes (their logical volumes are
// filesystems of their own) and volumes blkid finds no type on hold no
// files to scan; any other type left unmounted (vfat, ntfs, crypto_LUKS,
// a RAID member…) holds files the scan does not see, so it is a problem:
// the scan is not fully scanned.
func mountedOf(fss []publish.Filesystem, problems []string) *Mounted {
	mnt := &Mounted{Problems: problems}
	for _, fs := range fss {
		if fs.Mountpoint != "" {
			mnt.Targets = append(mnt.Targets, Target{Name: fs.Name, Root: fs.Mountpoint})
			continue
		}
		mnt.Unmounted = append(mnt.Unmounted, fs.Name)
		switch fs.FSType {
		case "", "swap", "LVM2_member":
		default:
			if fs.Problem == "" { // else publish reported it already
				mnt.Problems = append(mnt.Problems, fmt.Sprintf("%s (%s) is not mounted here, so not scanned", fs.Name, fs.FSType))
			}
		}
	}
	return mnt
}
