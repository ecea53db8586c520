package main

import (
	"errors"
	"reflect"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/spf13/pflag"
)

// TestScanAfterFlags: job create/edit's --scan-after options set, change
// and remove the definition's scan_after.
func TestScanAfterFlags(t *testing.T) {
	clam := &jobdef.ScanAfter{Engine: "clamscan", ClamAVDB: "/db"}
	for _, tc := range []struct {
		name  string
		have  *jobdef.ScanAfter
		args  []string
		want  *jobdef.ScanAfter
		usage bool
	}{
		{"on", nil, []string{"--scan-after"}, &jobdef.ScanAfter{}, false},
		{"on with a database", nil, []string{"--scan-after", "--scan-clamav-db", "/db"}, &jobdef.ScanAfter{ClamAVDB: "/db"}, false},
		{"yara", nil, []string{"--scan-after", "--scan-engine", "yara", "--scan-yara-rules", "/r.yar"},
			&jobdef.ScanAfter{Engine: "yara", YaraRules: "/r.yar"}, false},
		{"edit: switch engine", clam, []string{"--scan-engine", "yara", "--scan-yara-rules", "/r.yar"},
			&jobdef.ScanAfter{Engine: "yara", YaraRules: "/r.yar"}, false},
		{"edit: untouched", clam, []string{"--retries", "1"}, clam, false},
		{"off", clam, []string{"--scan-after=false"}, nil, false},
		{"options without --scan-after", nil, []string{"--scan-engine", "yara"}, nil, true},
		{"off with options", clam, []string{"--scan-after=false", "--scan-clamav-db", "/x"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f jobFlags
			fs := pflag.NewFlagSet("job", pflag.ContinueOnError)
			f.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			def := jobdef.Definition{}
			if tc.have != nil {
				have := *tc.have
				def.ScanAfter = &have
			}
			err := f.scan.apply(&def, fs.Changed)
			var ue usageError
			if tc.usage {
				if !errors.As(err, &ue) {
					t.Fatalf("error %v, want a usage error", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(def.ScanAfter, tc.want) {
				t.Fatalf("scan_after %+v (%v), want %+v", def.ScanAfter, err, tc.want)
			}
		})
	}
}
