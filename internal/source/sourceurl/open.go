package sourceurl

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
	nbdsource "github.com/holdfast-backup/holdfast/internal/source/nbd"
	"github.com/holdfast-backup/holdfast/internal/tlsconf"
)

// Options shape how a source is opened.
type Options struct {
	Format string // file sources: raw, qcow2, vmdk or "" (detect)
	// FollowBacking lets a file source given as qcow2 read its backing
	// chain (see file.Options).
	FollowBacking bool
	Bitmap        string      // nbd sources: dirty bitmap to use as CBT
	Connections   int         // nbd sources: parallel connections
	TLS           *tls.Config // nbds sources
}

// Open opens the disk a spec names.
func Open(ctx context.Context, spec source.Spec, o Options) (source.Disk, error) {
	switch spec.Kind {
	case source.KindFile:
		return file.Open(ctx, spec.Raw(), file.Options{Format: o.Format, FollowBacking: o.FollowBacking})
	case source.KindNBD:
		tc := o.TLS
		if tc == nil && spec.TLS() {
			tc = tlsconf.Base()
		}
		return nbdsource.Open(ctx, spec.Raw(), nbdsource.Options{TLS: tc, Bitmap: o.Bitmap, Connections: o.Connections})
	default:
		return nil, fmt.Errorf("source %s: a %s source is not one disk", spec, spec.Kind)
	}
}
