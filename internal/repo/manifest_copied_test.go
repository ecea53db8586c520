package repo

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// TestManifestCopiedFrom: a copied point's origin survives a round trip;
// a malformed one is a corrupt manifest.
func TestManifestCopiedFrom(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		c    *CopiedFrom
		ok   bool
	}{
		{"none", nil, true},
		{"copied", &CopiedFrom{Repository: "abc", Point: "0123456789abcdef", Time: at}, true},
		{"bad point", &CopiedFrom{Repository: "abc", Point: "../config"}, false},
		{"no repository", &CopiedFrom{Point: "0123456789abcdef"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(Manifest{Version: 1, ID: "0123456789abcdef", VM: "vm", CopiedFrom: tt.c})
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalManifest(b)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrCorrupt)) {
				t.Fatalf("error %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && (got.CopiedFrom == nil) != (tt.c == nil) || tt.ok && tt.c != nil && *got.CopiedFrom != *tt.c {
				t.Errorf("copied_from %+v, want %+v", got.CopiedFrom, tt.c)
			}
		})
	}
}
