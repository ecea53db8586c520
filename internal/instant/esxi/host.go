package esxi

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// firstHost is the first host of a compute resource (a standalone host or
// a cluster) that is connected and not in maintenance mode.
func firstHost(ctx context.Context, cr *object.ComputeResource) (*object.HostSystem, error) {
	hosts, err := cr.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		var m mo.HostSystem
		if err := h.Properties(ctx, h.Reference(), []string{"runtime"}, &m); err != nil {
			return nil, err
		}
		if m.Runtime.ConnectionState == types.HostSystemConnectionStateConnected && !m.Runtime.InMaintenanceMode {
			return h, nil
		}
	}
	return nil, fmt.Errorf("%w: no connected host outside maintenance mode", ErrTarget)
}
