package source

import (
	"fmt"
	"strings"
)

// Transport is how a proxy reads a source's data. The names are recorded in
// manifests, task rows and proxy capabilities, so they never change.
type Transport string

// The transports.
const (
	// TransportDirect reads image files straight from storage.
	TransportDirect Transport = "direct"
	// TransportHotAdd reads a VM's disks over a local unix socket on the
	// hypervisor host.
	TransportHotAdd Transport = "hotadd"
	// TransportNBD reads over NBD on TCP (or a unix socket).
	TransportNBD Transport = "nbd"
	// TransportNBDTLS reads over NBD with TLS.
	TransportNBDTLS Transport = "nbd+tls"
)

// TransportAuto is not a transport: as a job's or a backup's preference it
// lets the source's kind choose among the transports it allows.
const TransportAuto Transport = "auto"

// transportRow is one row of the transport table.
type transportRow struct {
	t Transport
	// choosable: a job or a backup may ask for it by name; nbd+tls is not,
	// it follows from an nbds:// URL or an NBD TLS directory.
	choosable bool
}

// transportTable lists every transport, in the default preference order.
func transportTable() []transportRow {
	return []transportRow{
		{TransportDirect, true},
		{TransportHotAdd, true},
		{TransportNBD, true},
		{TransportNBDTLS, false},
	}
}

// AllTransports returns every transport (what a proxy offers unless it
// says otherwise).
func AllTransports() []Transport {
	var out []Transport
	for _, r := range transportTable() {
		out = append(out, r.t)
	}
	return out
}

// ParseTransport parses a transport name (what a proxy announces).
func ParseTransport(s string) (Transport, error) {
	for _, r := range transportTable() {
		if string(r.t) == s {
			return r.t, nil
		}
	}
	return "", fmt.Errorf("unknown transport %q (want %s)", s, names(AllTransports()))
}

// ParsePreference parses a transport preference: "auto" (or "", which
// means auto) or a transport that may be asked for by name.
func ParsePreference(s string) (Transport, error) {
	if s == "" || s == string(TransportAuto) {
		return TransportAuto, nil
	}
	for _, r := range transportTable() {
		if r.choosable && string(r.t) == s {
			return r.t, nil
		}
	}
	return "", fmt.Errorf("unknown transport %q (want %s)", s, PreferenceNames())
}

// PreferenceNames lists the valid preferences for messages and flag help:
// "auto, direct, hotadd or nbd".
func PreferenceNames() string {
	ts := []Transport{TransportAuto}
	for _, r := range transportTable() {
		if r.choosable {
			ts = append(ts, r.t)
		}
	}
	return names(ts)
}

// TransportNames lists every transport for messages and flag help:
// "direct, hotadd, nbd or nbd+tls".
func TransportNames() string { return names(AllTransports()) }

// JoinTransports joins transport names with sep.
func JoinTransports(ts []Transport, sep string) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, sep)
}

// names formats "a, b or c".
func names(ts []Transport) string {
	if len(ts) < 2 {
		return JoinTransports(ts, "")
	}
	return JoinTransports(ts[:len(ts)-1], ", ") + " or " + string(ts[len(ts)-1])
}
