package scan

import (
	"context"

	"github.com/holdfast-backup/holdfast/internal/publish"
	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Published is a Mounter that publishes a point in this process with
// publish.Publish (o with Point set to the point scanned) and unpublishes
// it with Session.Close. Filesystems publish did not mount are reported
// as not scanned; what it could not publish (Session.Problems) makes the
// scan not fully scanned.
func Published(o publish.Options) Mounter {
	return func(ctx context.Context, m *repo.Manifest) (*Mounted, error) {
		o := o
		o.Point = m
		s, err := publish.Publish(ctx, o)
		if err != nil {
			return nil, err
		}
		mnt := &Mounted{Release: s.Close, Problems: s.Problems}
		for _, fs := range s.Filesystems {
			if fs.Mountpoint == "" {
				mnt.Unmounted = append(mnt.Unmounted, fs.Name)
				continue
			}
			mnt.Targets = append(mnt.Targets, Target{Name: fs.Name, Root: fs.Mountpoint})
		}
		return mnt, nil
	}
}
