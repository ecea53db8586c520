package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	srcspec "github.com/holdfast-backup/holdfast/internal/source"
)

// VMLister lists the VMs a selection picks from a source now (the
// orchestrator's SourceVMs), for GET /api/v1/sources/{name}/vms.
type VMLister interface {
	SourceVMs(ctx context.Context, sel jobdef.Selection) ([]jobdef.VM, []string, error)
}

// maxPreviewRuns caps ?count= of GET /api/v1/schedule/preview.
const maxPreviewRuns = 50

// schedulePreview answers when ?schedule= fires next (?count= times,
// default 5), validated and computed by the scheduler's parser as a job's
// schedule is: a schedule a job would refuse is refused here with the same
// message.
func (s *Server) schedulePreview(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	q := r.URL.Query()
	n := 5
	if c := q.Get("count"); c != "" {
		v, err := strconv.Atoi(c)
		if err != nil || v < 1 || v > maxPreviewRuns {
			return badRequest("count must be 1 to %d", maxPreviewRuns)
		}
		n = v
	}
	spec := q.Get("schedule")
	runs, after, err := jobdef.NextRuns(spec, s.now(), n)
	if err != nil {
		return err
	}
	out := apitypes.SchedulePreview{Schedule: spec, After: after, Next: make([]time.Time, 0, len(runs))}
	for _, t := range runs {
		out.Next = append(out.Next, t.UTC())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// listSourceVMs answers the VMs of a source a selection picks now
// (?pattern=, a shell glob; default all), with their disks redacted.
func (s *Server) listSourceVMs(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	src, err := s.store.GetSource(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if s.vms == nil {
		return newError(http.StatusServiceUnavailable, "unavailable", "this server cannot list the VMs of sources")
	}
	sel := jobdef.Selection{Source: src.Name, Pattern: r.URL.Query().Get("pattern")}
	if err := sel.Check(); err != nil {
		return badRequest("%v", err)
	}
	vms, warnings, err := s.vms.SourceVMs(r.Context(), sel)
	if err != nil {
		if errors.Is(err, configdb.ErrNotFound) || errors.Is(err, context.Canceled) {
			return err
		}
		// The source's own failure (unreachable, refused login): its
		// message, without credentials, is what the user must fix.
		s.log.Warn("list source VMs", "source", src.Name, "err", err)
		return newError(http.StatusBadGateway, "source_failed", "source "+src.Name+": "+err.Error())
	}
	out := apitypes.SourceVMs{Source: src.Name, VMs: make([]apitypes.SourceVM, 0, len(vms)), Warnings: warnings}
	for _, vm := range vms {
		v := apitypes.SourceVM{Name: vm.Name, Disks: make([]string, 0, len(vm.Disks))}
		for _, d := range vm.Disks {
			v.Disks = append(v.Disks, srcspec.Redact(d))
		}
		out.VMs = append(out.VMs, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
