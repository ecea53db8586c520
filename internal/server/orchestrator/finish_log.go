package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// logEnded logs an ended session: at info when it succeeded, at warn with
// its reason (the session's error and each failed VM's) otherwise, so the
// server's log says why without a look at the session.
func (or *Orchestrator) logEnded(ctx context.Context, res Result) {
	attrs := []any{"session", res.Session, "job", res.Job, "kind", res.Kind, "status", res.Status,
		"duration_seconds", res.Duration}
	level := slog.LevelInfo
	if res.Status == configdb.StateFailed || res.Status == configdb.StateCancelled || res.Status == configdb.StateWarning {
		level = slog.LevelWarn
		if reason := endReason(res); reason != "" {
			attrs = append(attrs, "reason", reason)
		}
	}
	or.log.Log(ctx, level, "session ended", attrs...)
}

// endReason is why a session did not simply succeed: its error, then each
// VM's errors and warnings ("vm1: …; vm2: …").
func endReason(res Result) string {
	var parts []string
	if res.Error != "" {
		parts = append(parts, res.Error)
	}
	parts = append(parts, res.Warnings...)
	for _, vm := range res.VMs {
		errs := append(append([]string(nil), vm.Errors...), vm.Warnings...)
		if len(vm.Errors) == 0 {
			for _, d := range vm.Disks {
				if d.Error != "" {
					errs = append(errs, fmt.Sprintf("disk %d: %s", d.Disk, d.Error))
				}
			}
		}
		for _, e := range errs {
			parts = append(parts, vm.Name+": "+e)
		}
	}
	return strings.Join(parts, "; ")
}
