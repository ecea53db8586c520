package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
	"github.com/holdfast-backup/holdfast/internal/source/sourceurl"
	"github.com/holdfast-backup/holdfast/internal/tlsconf"
)

// sourceOptions are the backup flags that shape how sources are opened.
type sourceOptions struct {
	format        string // file sources: raw, qcow2, vmdk or "" (detect)
	followBacking bool   // file sources given as qcow2: read the backing chain
	bitmap        string // nbd sources: dirty bitmap to use as CBT
	connections   int    // nbd sources: parallel connections
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsServerName string
}

// openSource opens a SOURCE argument: a path, a file:// URL or an NBD URL
// (nbd://, nbds://, nbd+unix://, nbds+unix://).
func openSource(ctx context.Context, spec source.Spec, o sourceOptions) (source.Disk, error) {
	so := sourceurl.Options{Format: o.format, FollowBacking: o.followBacking, Bitmap: o.bitmap, Connections: o.connections}
	if spec.Kind == source.KindNBD {
		tc, err := o.tlsConfig()
		if err != nil {
			return nil, err
		}
		so.TLS = tc
	}
	return sourceurl.Open(ctx, spec, so)
}

// parseSources parses SOURCE arguments (source.Parse); one that names no
// source is a usage error.
func parseSources(args []string) ([]source.Spec, error) {
	specs := make([]source.Spec, len(args))
	for i, a := range args {
		s, err := source.Parse(a)
		if err != nil {
			return nil, usageError{err}
		}
		specs[i] = s
	}
	return specs, nil
}

// tlsConfig builds the client TLS configuration for nbds:// sources.
func (o sourceOptions) tlsConfig() (*tls.Config, error) {
	tc := tlsconf.Base()
	tc.ServerName = o.tlsServerName
	if o.tlsCA != "" {
		pem, err := os.ReadFile(o.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificates", o.tlsCA)
		}
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// openSources opens every source or none; formats[i], if set, is the
// format source i is read with when --format does not say.
func openSources(ctx context.Context, specs []source.Spec, o sourceOptions, formats []string) ([]source.Disk, error) {
	var disks []source.Disk
	for i, s := range specs {
		so := o
		if so.format == "" && i < len(formats) {
			so.format = formats[i]
		}
		d, err := openSource(ctx, s, so)
		if err != nil {
			closeDisks(disks)
			return nil, err
		}
		disks = append(disks, d)
	}
	return disks, nil
}

// recordedFormats returns, per file source, the format the VM's previous
// point read the same file with ("" where there is none): a disk is read
// the same way every time, so a raw disk whose guest later writes a qcow2
// or VMDK header into it is still backed up as raw.
func recordedFormats(prev *repo.Manifest, specs []source.Spec) []string {
	formats := make([]string, len(specs))
	for i, spec := range specs {
		if prev == nil || i >= len(prev.Disks) || !spec.IsFile() {
			continue
		}
		if loc, err := file.Location(spec.Raw()); err == nil && loc == prev.Disks[i].Location {
			formats[i] = file.RecordedFormat(prev.Disks[i].Format)
		}
	}
	return formats
}

func closeDisks(disks []source.Disk) {
	for _, d := range disks {
		d.Close()
	}
}
