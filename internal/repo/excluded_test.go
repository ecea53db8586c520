package repo

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestManifestExcludedValidated: a manifest's excluded record must fit its
// disk; one that does not is a corrupt manifest.
func TestManifestExcludedValidated(t *testing.T) {
	tests := []struct {
		name string
		ex   *Excluded
		ok   bool
	}{
		{"none", nil, true},
		{"counts and runs", &Excluded{Bytes: map[string]int64{"free": 3 << 20, "swap": 1 << 20},
			Chunks: []ByteRange{{0, 2 << 20}, {4 << 20, 4 << 20}}}, true},
		{"omitted", &Excluded{Bytes: map[string]int64{"free": 5}, ChunksOmitted: true}, true},
		{"more than the disk", &Excluded{Bytes: map[string]int64{"free": 6 << 20, "swap": 3 << 20}}, false},
		{"negative", &Excluded{Bytes: map[string]int64{"free": -1}}, false},
		{"run past the end", &Excluded{Chunks: []ByteRange{{6 << 20, 4 << 20}}}, false},
		{"runs out of order", &Excluded{Chunks: []ByteRange{{4 << 20, 1 << 20}, {0, 1 << 20}}}, false},
		{"empty run", &Excluded{Chunks: []ByteRange{{0, 0}}}, false},
		{"too many runs", &Excluded{Chunks: make([]ByteRange, MaxExcludedRuns+1)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Manifest{Version: 1, ID: "0123456789abcdef", VM: "vm", Disks: []DiskManifest{
				{Index: 0, Size: 8 << 20, ChunkSize: MinChunkSize, Excluded: tt.ex}}}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalManifest(b)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrCorrupt)) {
				t.Fatalf("error %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && got.Disks[0].Excluded.Total() != tt.ex.Total() {
				t.Fatalf("excluded %+v after a round trip, want %+v", got.Disks[0].Excluded, tt.ex)
			}
		})
	}
}
