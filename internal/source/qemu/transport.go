package qemu

import "fmt"

// chooseTransport picks the transport for the session and explains, for
// auto, why the modes before it were skipped. Direct storage access needs
// the proxy to read the disk image files themselves while QEMU keeps
// writing elsewhere; this build reads through QEMU's point-in-time export
// instead, so direct is reported as unavailable and auto falls over to
// hotadd: the proxy runs on the hypervisor host (the QMP socket is local)
// and reads the export over a unix socket without a network hop.
func chooseTransport(want string, tls bool) (mode, note string, err error) {
	const directWhy = "direct: not available (reading image files beside a running QEMU is not supported by this build)"
	switch want {
	case TransportAuto:
		if tls {
			return TransportNBD, directWhy + "; hotadd: skipped because NBD over TLS was requested; nbd+tls: used", nil
		}
		return TransportHotAdd, directWhy + "; hotadd: used (local unix socket)", nil
	case TransportHotAdd:
		return TransportHotAdd, "hotadd: used (local unix socket)", nil
	case TransportNBD:
		return TransportNBD, "nbd: used (TCP)", nil
	case TransportDirect:
		return "", "", fmt.Errorf("transport direct is not available for QEMU sources in this build; use auto, hotadd or nbd")
	}
	return "", "", fmt.Errorf("unknown transport %q (want auto, direct, hotadd or nbd)", want)
}
