package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestJobsSummary: GET /api/v1/jobs?summary=true lists the jobs with their
// runs but without definitions (what the console's list pages need, a
// fraction of the bytes); without it, or false, definitions are there; a
// value that is not a boolean is refused.
func TestJobsSummary(t *testing.T) {
	e := newEnv(t) // job j1 and its sessions 1 and 2
	viewer := e.tokens[configdb.RoleViewer]
	full := e.mustDo(viewer, "GET", "/api/v1/jobs", "", 200)
	sum := e.mustDo(viewer, "GET", "/api/v1/jobs?summary=true", "", 200)
	jobs := decodeBody[[]apitypes.Job](t, sum)
	if len(jobs) != 1 || jobs[0].Name != "j1" || jobs[0].Definition != nil || jobs[0].LastRun == nil || jobs[0].LastRun.Session != 2 {
		t.Fatalf("summary: %+v", jobs)
	}
	if strings.Contains(sum.Body.String(), `"definition"`) || sum.Body.Len() >= full.Body.Len() {
		t.Fatalf("summary (%d bytes) vs full (%d bytes): %s", sum.Body.Len(), full.Body.Len(), sum.Body)
	}
	for _, path := range []string{"/api/v1/jobs", "/api/v1/jobs?summary=false"} {
		jobs := decodeBody[[]apitypes.Job](t, e.mustDo(viewer, "GET", path, "", 200))
		if len(jobs) != 1 || len(jobs[0].Definition) == 0 {
			t.Fatalf("%s: %+v", path, jobs)
		}
	}
	checkError(t, e.do(viewer, "GET", "/api/v1/jobs?summary=maybe", ""), http.StatusBadRequest, "invalid_request")
}
