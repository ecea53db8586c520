package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestAgentListOnline: GET /agents says whether each agent heartbeated
// within the agent timeout (30 s by default): not before its first
// heartbeat, yes right after one, no once the timeout has passed.
func TestAgentListOnline(t *testing.T) {
	e := newEnv(t)
	ts := tlsServer(t, e)
	cert := join(t, e, "repo1")
	online := func() bool {
		t.Helper()
		as := decodeBody[[]apitypes.Agent](t, e.mustDo(e.tokens[configdb.RoleViewer], "GET", "/api/v1/agents", "", 200))
		if len(as) != 1 || as[0].Name != "repo1" {
			t.Fatalf("agents %+v", as)
		}
		return as[0].Online
	}
	if online() {
		t.Fatal("an agent that never heartbeated is online")
	}
	if code, err := heartbeat(t, e, ts.URL, &cert); err != nil || code != http.StatusOK {
		t.Fatalf("heartbeat: %d %v", code, err)
	}
	if !online() {
		t.Fatal("an agent that just heartbeated is offline")
	}
	e.clk.Advance(31 * time.Second)
	if online() {
		t.Fatal("an agent silent past the timeout is online")
	}
}
