package s3

import (
	"net/http"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

func TestParseRetention(t *testing.T) {
	tests := []struct {
		mode, until string
		want        storage.Retention
		bad         bool
	}{
		{"", "", storage.Retention{}, false},
		{"COMPLIANCE", "2026-12-04T11:49:50Z", storage.Retention{Mode: storage.ModeCompliance, Until: time.Date(2026, 12, 4, 11, 49, 50, 0, time.UTC)}, false},
		{"GOVERNANCE", "2026-12-04T11:49:50.5+01:00", storage.Retention{Mode: storage.ModeGovernance, Until: time.Date(2026, 12, 4, 10, 49, 50, 5e8, time.UTC)}, false},
		{"COMPLIANCE", "", storage.Retention{}, true},
		{"LEGAL", "2026-12-04T11:49:50Z", storage.Retention{}, true},
		{"", "2026-12-04T11:49:50Z", storage.Retention{}, true},
		{"COMPLIANCE", "tomorrow", storage.Retention{}, true},
		{"COMPLIANCE", "0001-01-01T00:00:00Z", storage.Retention{}, true},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.mode != "" {
			h.Set(hdrLockMode, tc.mode)
		}
		if tc.until != "" {
			h.Set(hdrLockUntil, tc.until)
		}
		got, err := parseRetention("x", h)
		if (err != nil) != tc.bad || got.Mode != tc.want.Mode || !got.Until.Equal(tc.want.Until) {
			t.Errorf("%q %q: %+v %v, want %+v (error %v)", tc.mode, tc.until, got, err, tc.want, tc.bad)
		}
	}
}

func FuzzParseRetention(f *testing.F) {
	f.Add("COMPLIANCE", "2026-12-04T11:49:50Z")
	f.Add("governance", "2026-12-04T11:49:50.123456789-07:00")
	f.Add("", "")
	f.Add("COMPLIANCE", "0001-01-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, mode, until string) {
		h := http.Header{}
		h.Set(hdrLockMode, mode)
		h.Set(hdrLockUntil, until)
		r, err := parseRetention("x", h)
		if err != nil {
			return
		}
		if (r.Mode == "") != r.Until.IsZero() {
			t.Errorf("%q %q gave %+v", mode, until, r)
		}
	})
}
