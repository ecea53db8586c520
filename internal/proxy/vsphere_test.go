package proxy

import (
	"reflect"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// TestVSphereTransports: the transports a proxy announces for vSphere
// VMs follow its flags, in auto's order; nbd is always there.
func TestVSphereTransports(t *testing.T) {
	paths := map[string]string{"LocalDS_0": "/mnt/ds0"}
	tests := []struct {
		o    VSphereOptions
		want []source.Transport
	}{
		{VSphereOptions{}, []source.Transport{source.TransportNBD}},
		{VSphereOptions{DatastorePaths: paths}, []source.Transport{source.TransportDirect, source.TransportNBD}},
		{VSphereOptions{VMName: "proxy-vm"}, []source.Transport{source.TransportHotAdd, source.TransportNBD}},
		{VSphereOptions{DatastorePaths: paths, VMName: "proxy-vm"},
			[]source.Transport{source.TransportDirect, source.TransportHotAdd, source.TransportNBD}},
	}
	for _, tc := range tests {
		if got := tc.o.Transports(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.o, got, tc.want)
		}
	}
}
