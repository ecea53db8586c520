package qemu

import (
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// chooseTransport picks the session's transport. auto tries direct (every
// disk image readable from this host), then hotadd (the proxy is on the
// hypervisor host: the QMP socket is local, so a unix-socket export always
// works), then nbd; the note says which mode served and why the others
// were skipped. NBD over TLS asks for the network mode.
func chooseTransport(want source.Transport, tls bool, disks []vmDisk) (mode source.Transport, note string, err error) {
	var why []string
	for _, d := range disks {
		if r := directPossible(d); r != "" {
			why = append(why, r)
		}
	}
	switch want {
	case source.TransportAuto:
		if tls {
			return source.TransportNBD, "direct, hotadd: skipped because NBD over TLS was requested; nbd+tls: used", nil
		}
		if len(why) == 0 {
			return source.TransportDirect, "direct: used (images read from storage, writes kept in an overlay meanwhile)", nil
		}
		return source.TransportHotAdd, "direct: skipped (" + strings.Join(why, "; ") + "); hotadd: used (local unix socket)", nil
	case source.TransportDirect:
		if len(why) > 0 {
			return "", "", fmt.Errorf("transport direct is not possible: %s", strings.Join(why, "; "))
		}
		return source.TransportDirect, "direct: used", nil
	case source.TransportHotAdd:
		return source.TransportHotAdd, "hotadd: used (local unix socket)", nil
	case source.TransportNBD:
		return source.TransportNBD, "nbd: used (TCP)", nil
	}
	return "", "", fmt.Errorf("unknown transport %q (want %s)", want, source.PreferenceNames())
}
