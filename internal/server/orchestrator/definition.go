package orchestrator

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
)

// parseDefinition reads a stored job definition (jobdef.Parse, lenient
// about keys an older version wrote) and validates it.
func parseDefinition(raw json.RawMessage) (jobdef.Definition, error) {
	d, err := jobdef.Parse(raw)
	if err != nil {
		return d, err
	}
	if err := d.Validate(); err != nil {
		return d, fmt.Errorf("job definition: %w", err)
	}
	return d, nil
}

// isQEMU reports whether a VM's disk entry is a whole QEMU VM.
func isQEMU(disk string) bool { return strings.HasPrefix(disk, "qemu:") }

// transportsFor returns the transports a disk can be read with: image
// paths straight from storage (direct), NBD URLs over the network; a QEMU
// VM in the order its snapshot prefers them.
func transportsFor(disk string) []string {
	switch {
	case isQEMU(disk):
		return []string{scheduler.TransportDirect, scheduler.TransportHotAdd, scheduler.TransportNBD}
	case strings.HasPrefix(disk, "nbds://"):
		return []string{scheduler.TransportNBDTLS}
	case strings.HasPrefix(disk, "nbd://"), strings.HasPrefix(disk, "nbd+unix://"):
		return []string{scheduler.TransportNBD}
	}
	return []string{scheduler.TransportDirect}
}
