package qemu

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// Options configure a backup session of one VM.
type Options struct {
	// QMP is the path of the VM's QMP unix socket.
	QMP string
	// GuestAgent is the path of the guest agent socket (optional).
	GuestAgent string
	// Transport is auto, direct, hotadd or nbd (source.ParsePreference).
	Transport source.Transport
	// Tag makes bitmap names unique per repository ("hf-<tag>-…").
	Tag string
	// PreviousChangeIDs are the change IDs of the previous restore point's
	// disks, by disk index ("" where there is none).
	PreviousChangeIDs []string
	// RunDir holds fleecing overlays and the NBD socket; default: a
	// directory next to the QMP socket.
	RunDir string
	// NBDHost is the address QEMU's NBD server listens on for transport
	// nbd (default 127.0.0.1).
	NBDHost string
	// TLSDir holds ca-cert.pem, server-cert.pem and server-key.pem for an
	// NBD-over-TLS export (transport nbd only); ClientTLS verifies it.
	TLSDir    string
	ClientTLS *tls.Config
	// FreezeTimeout bounds the guest agent calls (default 10 s).
	FreezeTimeout time.Duration
	// Connections per disk export (default 4).
	Connections int
	Logger      *slog.Logger
}

func (o *Options) defaults() {
	if o.Transport == "" {
		o.Transport = source.TransportAuto
	}
	if o.Tag == "" {
		o.Tag = "default"
	}
	if o.NBDHost == "" {
		o.NBDHost = "127.0.0.1"
	}
	if o.FreezeTimeout <= 0 {
		o.FreezeTimeout = 10 * time.Second
	}
	if o.Connections <= 0 {
		o.Connections = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
