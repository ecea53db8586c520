package sourceurl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
	nbdsource "github.com/holdfast-backup/holdfast/internal/source/nbd"
	"github.com/holdfast-backup/holdfast/internal/tlsconf"
)

// ErrScheme is matched by the error for an unsupported URL scheme.
var ErrScheme = errors.New("unsupported source scheme")

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

// Scheme returns spec's URL scheme ("" for a plain path).
func Scheme(spec string) string {
	if i := strings.Index(spec, "://"); i > 0 {
		return spec[:i]
	}
	return ""
}

// IsFile reports whether spec names a local image or block device (a path
// or a file:// URL), whose format Options.Format gives.
func IsFile(spec string) bool {
	s := Scheme(spec)
	return s == "" || strings.EqualFold(s, "file")
}

// Open opens spec.
func Open(ctx context.Context, spec string, o Options) (source.Disk, error) {
	switch scheme := Scheme(spec); {
	case IsFile(spec):
		return file.Open(ctx, spec, file.Options{Format: o.Format, FollowBacking: o.FollowBacking})
	case scheme == "nbd", scheme == "nbds", scheme == "nbd+unix", scheme == "nbds+unix":
		tc := o.TLS
		if tc == nil && strings.HasPrefix(scheme, "nbds") {
			tc = tlsconf.Base()
		}
		return nbdsource.Open(ctx, spec, nbdsource.Options{TLS: tc, Bitmap: o.Bitmap, Connections: o.Connections})
	default:
		return nil, fmt.Errorf("source %q: %w %q (use a path, file://, nbd://, nbds:// or nbd+unix://)", spec, ErrScheme, scheme)
	}
}
