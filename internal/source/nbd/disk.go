package nbd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	wire "github.com/holdfast-backup/holdfast/internal/nbd"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// Options tune Open.
type Options struct {
	TLS *tls.Config
	// Bitmap names a qemu:dirty-bitmap context to use as CBT.
	Bitmap string
	// Connections is the number of NBD connections to read over (default
	// 1: servers such as qemu-nbd serve one client unless told otherwise).
	Connections int
	// DialTimeout bounds connecting and the handshake (default 30 s).
	DialTimeout time.Duration
	// Transport is recorded in the manifest (default "nbd" or "nbd+tls").
	Transport source.Transport
	// ChangeID overrides the change ID recorded for the next backup and
	// PreviousChangeID the one the bitmap is relative to (the qemu source
	// sets both; empty means "nbd-bitmap:NAME" for both).
	ChangeID, PreviousChangeID string
	// Dial, when set, opens each connection (see nbd.ClientOptions.Dial).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Format and Location override what Describe reports.
	Format, Location string
}

// Disk is an NBD export being backed up.
type Disk struct {
	mc       *wire.MultiConn
	url      string
	o        Options
	bitmapCx string
}

var (
	_ source.Disk          = (*Disk)(nil)
	_ source.ChangeTracker = (*Disk)(nil)
)

// Open connects to the export.
func Open(ctx context.Context, url string, o Options) (*Disk, error) {
	if o.Connections <= 0 {
		o.Connections = 1
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 30 * time.Second
	}
	u, err := wire.ParseURL(url)
	if err != nil {
		return nil, err
	}
	if o.Transport == "" {
		o.Transport = source.TransportNBD
		if u.TLS {
			o.Transport = source.TransportNBDTLS
		}
	}
	co := wire.ClientOptions{TLSConfig: o.TLS, MetaContexts: []string{wire.ContextBaseAllocation}, Dial: o.Dial}
	d := &Disk{url: url, o: o}
	if o.Bitmap != "" {
		d.bitmapCx = wire.ContextDirtyBitmapPrefix + o.Bitmap
		co.MetaContexts = append(co.MetaContexts, d.bitmapCx)
	}
	dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	if d.mc, err = wire.DialMulti(dctx, url, co, o.Connections); err != nil {
		return nil, fmt.Errorf("nbd source %s: %w", source.Redact(url), err)
	}
	return d, nil
}

// ReadAt reads from the export over one of the connections.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) { return d.mc.ReadAt(p, off) }

// Size is the export size.
func (d *Disk) Size() int64 { return d.mc.Size() }

// Close disconnects.
func (d *Disk) Close() error { return d.mc.Close() }

// Describe reports the URL and transport.
func (d *Disk) Describe() source.Info {
	info := source.Info{Format: "nbd", Location: source.Redact(d.url), Transport: d.o.Transport}
	if d.o.Format != "" {
		info.Format = d.o.Format
	}
	if d.o.Location != "" {
		info.Location = d.o.Location
	}
	return info
}

func (d *Disk) granted(name string) bool {
	_, ok := d.mc.Clients()[0].MetaContextID(name)
	return ok
}

// Allocated lists the ranges that are neither holes nor zeros according to
// base:allocation, or the whole export if the server does not say.
func (d *Disk) Allocated(ctx context.Context) ([]source.Extent, error) {
	if !d.granted(wire.ContextBaseAllocation) {
		return source.FullExtent(d.Size()), nil
	}
	ext, err := d.mc.Clients()[0].AllocatedExtents(ctx)
	if err != nil {
		return nil, fmt.Errorf("block status: %w", err)
	}
	return toSource(ext), nil
}

// ChangeID is the identity of the bitmap state this backup captured.
func (d *Disk) ChangeID() string {
	if d.o.ChangeID != "" {
		return d.o.ChangeID
	}
	if d.o.Bitmap == "" {
		return ""
	}
	return "nbd-bitmap:" + d.o.Bitmap
}

// Changed returns the bitmap's dirty extents when the bitmap belongs to the
// previous backup.
func (d *Disk) Changed(ctx context.Context, prev string) (source.Changes, error) {
	want := d.o.PreviousChangeID
	if want == "" {
		want = d.ChangeID()
	}
	switch {
	case d.o.Bitmap == "":
		return source.Changes{Reason: "no dirty bitmap given"}, nil
	case prev != want:
		return source.Changes{Reason: fmt.Sprintf("the previous restore point was taken with change id %q, the bitmap tracks %q", prev, want)}, nil
	case !d.granted(d.bitmapCx):
		return source.Changes{Reason: fmt.Sprintf("the server does not offer %s", d.bitmapCx)}, nil
	}
	ext, err := d.mc.Clients()[0].DirtyExtents(ctx, d.bitmapCx)
	if err != nil {
		return source.Changes{}, fmt.Errorf("dirty bitmap %s: %w", d.o.Bitmap, err)
	}
	return source.Changes{Extents: toSource(ext), Known: true}, nil
}

func toSource(ext []wire.Extent) []source.Extent {
	out := make([]source.Extent, 0, len(ext))
	for _, e := range ext {
		if k := len(out) - 1; k >= 0 && out[k].End() == e.Offset {
			out[k].Length += e.Length
			continue
		}
		out = append(out, source.Extent{Offset: e.Offset, Length: e.Length})
	}
	return out
}
