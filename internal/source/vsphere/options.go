package vsphere

import (
	"log/slog"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// DefaultConnections is the number of parallel ranged reads per disk in
// nbd mode when none is given.
const DefaultConnections = 4

// Options configure a backup session of one VM.
type Options struct {
	// Locator names the VM (Path = /DC/vm/…/VM).
	Locator Locator
	Connect ConnectOptions
	// Transport is the preference: auto (default), direct, hotadd or nbd.
	Transport source.Transport
	// Transports are the available implementations in auto's order
	// (direct, hotadd, nbd); nil: only NewNBD(Connections).
	Transports []Transport
	// Quiesce asks for a quiesced snapshot through VMware Tools; when that
	// fails the snapshot is crash-consistent and the session says why.
	Quiesce bool
	// Tag makes snapshot names unique per repository ("holdfast-<tag>-…").
	Tag string
	// PreviousChangeIDs are the change IDs of the previous restore point's
	// disks, by disk index ("" where there is none). The pipeline hands
	// each to its disk's Changed; the session logs the ones it cannot use.
	PreviousChangeIDs []string
	// Connections is the number of parallel ranged reads per disk in nbd
	// mode (default 4).
	Connections int
	Logger      *slog.Logger
	// Clock names snapshots and paces retries (nil: the real clock).
	Clock clock.Clock
}

func (o *Options) defaults() {
	if o.Transport == "" {
		o.Transport = source.TransportAuto
	}
	if o.Tag == "" {
		o.Tag = "default"
	}
	if o.Connections <= 0 {
		o.Connections = DefaultConnections
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Clock = clock.Or(o.Clock)
	if o.Transports == nil {
		o.Transports = []Transport{NewNBD(o.Connections)}
	}
}
