package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/scan"
)

// TestNotScannedRefusal: a secure restore of a point not fully scanned is
// refused as not scanned, saying that --on-infection does not apply and
// what to do instead.
func TestNotScannedRefusal(t *testing.T) {
	m := &repo.Manifest{ID: "0123456789abcdef", VM: "vm1"}
	tests := []struct {
		name, why string
		want      []string
	}{
		{"volume group skipped", "not fully scanned: volume group cl skipped: a volume group of that name is active on this host",
			[]string{"volume group cl skipped", "--on-infection does not apply", "on a mount host without a volume group of that name", "restore without --scan"}},
		{"engine error", "clamscan exited 2: bad database", []string{"bad database", "restore without --scan"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := notScannedRefusal(m, scan.Report{Engine: scan.ClamScan, Result: repo.ScanFailed, Error: tc.why})
			if !errors.Is(err, scan.ErrNotScanned) {
				t.Fatalf("%v: not ErrNotScanned", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}
