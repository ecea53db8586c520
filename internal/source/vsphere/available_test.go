package vsphere

import (
	"slices"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

func TestAvailable(t *testing.T) {
	paths := map[string]string{"ds1": "/mnt/ds1"}
	tests := []struct {
		name    string
		paths   map[string]string
		proxyVM string
		want    []source.Transport
	}{
		{"nbd only", nil, "", []source.Transport{source.TransportNBD}},
		{"direct", paths, "", []source.Transport{source.TransportDirect, source.TransportNBD}},
		{"hotadd", nil, "proxy1", []source.Transport{source.TransportHotAdd, source.TransportNBD}},
		{"all", paths, "proxy1", []source.Transport{source.TransportDirect, source.TransportHotAdd, source.TransportNBD}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []source.Transport
			for _, tr := range Available(tc.paths, tc.proxyVM, 4) {
				got = append(got, tr.Name())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Available = %v, want %v", got, tc.want)
			}
		})
	}
}
