package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

func TestLogEnded(t *testing.T) {
	for _, tc := range []struct {
		name        string
		res         Result
		level, want string
	}{
		{"success", Result{Session: 1, Job: "nightly", Kind: "backup", Status: configdb.StateSuccess}, "INFO", ""},
		{"failed VM", Result{Session: 2, Job: "nightly", Kind: "backup", Status: configdb.StateFailed,
			VMs: []VMResult{{Name: "vm1", Errors: []string{"open disk: no such file"}}, {Name: "vm2"}}},
			"WARN", "vm1: open disk: no such file"},
		{"failed disk", Result{Session: 3, Kind: "restore", Status: configdb.StateFailed, Error: "proxy lost",
			VMs: []VMResult{{Name: "vm1", Disks: []DiskResult{{Disk: 1, Error: "target exists"}}}}},
			"WARN", "proxy lost; vm1: disk 1: target exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			or := &Orchestrator{log: slog.New(slog.NewJSONHandler(&buf, nil))}
			or.logEnded(context.Background(), tc.res)
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("%v: %s", err, buf.String())
			}
			if line["level"] != tc.level || line["msg"] != "session ended" || line["status"] != string(tc.res.Status) {
				t.Errorf("line %s: want level %s", buf.String(), tc.level)
			}
			if got, _ := line["reason"].(string); got != tc.want {
				t.Errorf("reason %q, want %q", got, tc.want)
			}
		})
	}
}
