package proxy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// TestScanMountNotScanned: a scan the mount server cannot run ends the
// attempt with a failed (not scanned) scan result saying why, before any
// repository is opened, never with a clean one.
func TestScanMountNotScanned(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.yar")
	for _, tc := range []struct {
		name, state string
		scan        jobdef.ScanAfter
		want        string
	}{
		{"no state directory", "", jobdef.ScanAfter{}, "no state directory"},
		{"rules file missing", t.TempDir(), jobdef.ScanAfter{Engine: "yara", YaraRules: missing}, "none.yar"},
		{"database missing", t.TempDir(), jobdef.ScanAfter{ClamAVDB: missing}, "not scanned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.state != "" && os.Geteuid() != 0 {
				tc.want = "not run as root"
			}
			p := &Proxy{o: Options{StateDir: tc.state, Clock: clock.Or(nil)}, log: slog.New(slog.DiscardHandler)}
			sa := tc.scan
			at := &attempt{spec: &taskproto.Spec{TaskID: 1, Attempt: 1, Kind: taskproto.KindMount,
				Mount: &taskproto.Mount{Scan: &sa}}}
			res, err := p.scanMount(context.Background(), at, &repo.Manifest{ID: "0123456789abcdef", VM: "vm1"})
			if err != nil || res.Scan == nil || res.Scan.Result != repo.ScanFailed || res.Scan.Recorded ||
				!strings.Contains(res.Scan.Error, tc.want) {
				t.Fatalf("scan result %+v (%v), want not scanned naming %q", res.Scan, err, tc.want)
			}
		})
	}
}
