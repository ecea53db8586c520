package orchestrator

import (
	"context"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
)

// SourceVMs lists the VMs sel picks from its source now, as a session
// starting now would (resolveSelection: image files, NBD exports, vSphere
// inventory, libvirt domains), with the selection's warnings; the console's
// job wizard shows them to choose from.
func (or *Orchestrator) SourceVMs(ctx context.Context, sel jobdef.Selection) ([]jobdef.VM, []string, error) {
	def := jobdef.Definition{Select: []jobdef.Selection{sel}}
	out, err := or.resolveSelection(ctx, &def)
	if err != nil {
		return nil, nil, err
	}
	return def.VMs, out.warnings, nil
}
