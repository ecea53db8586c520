package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// retrySession runs the job of an ended backup session again for the VMs
// that failed in it: a new session of the job, started as POST
// /jobs/{name}/run starts one (one run of a job at a time), whose
// definition lists only those VMs. A job that selects its VMs from sources
// is refused (its VMs are chosen at run time); so is a session with no
// failed VM of the job's current definition.
func (s *Server) retrySession(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return badRequest("session id %q: want a positive integer", r.PathValue("id"))
	}
	old, err := s.store.GetSession(ctx, id)
	if err != nil {
		return err
	}
	if old.JobName == "" || (old.Kind != "" && old.Kind != taskproto.KindBackup) || !old.State.Terminal() {
		return newError(http.StatusConflict, "not_retryable",
			fmt.Sprintf("session %d is a %s session in state %s: only an ended backup job's session can be retried", id, old.Kind, old.State))
	}
	failed := failedVMs(old.Result)
	if len(failed) == 0 {
		return newError(http.StatusConflict, "not_retryable", fmt.Sprintf("session %d has no failed VM to retry", id))
	}
	j, err := s.store.GetJob(ctx, old.JobName)
	if err != nil {
		return err
	}
	def, err := onlyVMs(j.Definition, failed)
	if err != nil {
		return newError(http.StatusConflict, "not_retryable", fmt.Sprintf("session %d: %v", id, err))
	}
	if err := s.checkNotRunning(ctx, j); err != nil {
		return err
	}
	j.Definition = def
	se, err := s.queueRun(ctx, p, j, "session.retry", strconv.FormatInt(id, 10), map[string]any{"job": j.Name, "vms": failed})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, viewSession(se))
	return nil
}

// failedVMs are the names of the VMs a session's result reports failed.
func failedVMs(result json.RawMessage) []string {
	var res struct {
		VMs []struct {
			Name   string         `json:"name"`
			Status configdb.State `json:"status"`
		} `json:"vms"`
	}
	if json.Unmarshal(result, &res) != nil {
		return nil
	}
	var out []string
	for _, v := range res.VMs {
		if v.Status == configdb.StateFailed && !slices.Contains(out, v.Name) {
			out = append(out, v.Name)
		}
	}
	return out
}

// onlyVMs is a job definition keeping, of its VMs, those named; every
// other key is kept as stored.
func onlyVMs(raw json.RawMessage, names []string) (json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("job definition: %w", err)
	}
	if sel, ok := doc["select"]; ok && string(sel) != "null" && string(sel) != "[]" {
		return nil, fmt.Errorf("the job selects its VMs from sources at run time; run the job again instead")
	}
	var vms []json.RawMessage
	if err := json.Unmarshal(doc["vms"], &vms); err != nil && len(doc["vms"]) > 0 {
		return nil, fmt.Errorf("job definition: vms: %w", err)
	}
	var kept []json.RawMessage
	for _, v := range vms {
		var vm jobdef.VM
		if json.Unmarshal(v, &vm) == nil && slices.Contains(names, vm.Name) {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("the job no longer has its failed VMs (%s)", strings.Join(names, ", "))
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	doc["vms"] = b
	return json.Marshal(doc)
}
