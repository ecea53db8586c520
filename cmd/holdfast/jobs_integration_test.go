package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// maintenanceJSON is a maintenance session's result document.
type maintenanceJSON struct {
	Status string   `json:"status"`
	Errors []string `json:"errors"`
	Error  string   `json:"error"`
	GC     *struct {
		Referenced int `json:"referenced_chunks"`
		Removed    int `json:"removed_chunks"`
	} `json:"gc"`
	Verify *struct {
		Points   int               `json:"points"`
		Checked  int               `json:"chunks_read"`
		Subset   string            `json:"read_data_subset"`
		Problems []json.RawMessage `json:"problems"`
	} `json:"verify"`
	ReadDataPart int `json:"read_data_part"`
	ReadDataOf   int `json:"read_data_of"`
}

// TestJobsLifecycle runs, with a real server, repository agent and proxy:
// a session no proxy can reach (it says why, and a second run of its job
// is refused), GFS retention applied by a server job, and a scheduled-kind
// maintenance job whose gc frees what retention forgot and whose verify
// reads a rotating half of the chunks per run.
func TestJobsLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := newCluster(t, "")
	dir := c.e.dir
	reach := filepath.Join(dir, "reach")
	if err := os.MkdirAll(reach, 0o755); err != nil {
		t.Fatal(err)
	}
	r1 := c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 2, "--reach", reach+"/")
	c.waitAgents("repo1", "proxy1")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("waiting and second run", func(t *testing.T) {
		c.e.ok("job", "create", "lost", "--repository", "repo1", "--password-file", pw,
			"--vm", "lost="+filepath.Join(dir, "elsewhere", "lost.img"))
		id := c.startJob("lost")
		ids := strconv.FormatInt(id, 10)
		c.waitSession(id, func(se sessionTasks) bool {
			return len(se.Tasks) == 1 && strings.HasPrefix(se.Tasks[0].Error, "waiting: no proxy can reach lost")
		})
		if out := c.e.ok("session", "show", ids); !strings.Contains(out, "running (waiting: no proxy can reach lost") {
			t.Errorf("session show does not say why it waits:\n%s", out)
		}
		r := c.e.run("job", "run", "lost", "--wait")
		if r.code != exitFailure || !strings.Contains(r.stderr, "job lost is already running (session "+ids+")") {
			t.Errorf("second run: exit %d, %s", r.code, r.stderr)
		}
		c.e.ok("session", "cancel", ids)
		c.waitSession(id, func(se sessionTasks) bool { return se.State == "cancelled" })
	})

	img := filepath.Join(reach, "g1-disk0.img")
	t.Run("GFS retention", func(t *testing.T) {
		c.e.ok("job", "create", "gfs", "--repository", "repo1", "--password-file", pw, "--vm", "g1="+img,
			"--retention-daily", "1")
		var last jobResult
		for run := range 3 { // all today: keep-daily 1 keeps the newest
			writeImage(t, img, 2<<20, map[int64][]byte{0: randomBytes(2 << 20)})
			last = c.runJob("gfs")
			if want := min(run, 1); len(last.VMs) != 1 || len(last.VMs[0].Forgotten) != want {
				t.Fatalf("run %d: forgot %v, want %d point(s): %+v", run+1, last.VMs[0].Forgotten, want, last.VMs)
			}
		}
		var local []apitypes.Point
		if err := json.Unmarshal([]byte(c.e.ok("points", "--repo", r1, "--vm", "g1", "--json")), &local); err != nil {
			t.Fatal(err)
		}
		if len(local) != 1 || local[0].ID != last.VMs[0].Point {
			t.Errorf("repository holds %+v, want only the newest point %s", local, last.VMs[0].Point)
		}
		if out := c.e.ok("job", "show", "gfs"); !strings.Contains(out, "keep daily 1") ||
			!strings.Contains(out, "success (session "+strconv.FormatInt(last.Session, 10)) {
			t.Errorf("job show:\n%s", out)
		}
	})

	t.Run("maintenance job", func(t *testing.T) {
		before := countChunks(t, r1)
		c.e.ok("job", "create", "maint", "--kind", "maintenance", "--repository", "repo1", "--password-file", pw,
			"--gc", "--gc-grace", "0s", "--verify", "--read-data", "50%", "--schedule", "0 4 * * 0")
		var subsets []string
		for run := range 2 {
			out := c.e.ok("job", "run", "maint", "--wait", "--json")
			var res maintenanceJSON
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if res.Status != "success" || res.GC == nil || res.Verify == nil || len(res.Verify.Problems) != 0 {
				t.Fatalf("run %d: %s", run+1, out)
			}
			if run == 0 && res.GC.Removed == 0 {
				t.Errorf("gc removed nothing of the forgotten points: %s", out)
			}
			subsets = append(subsets, res.Verify.Subset)
		}
		if subsets[0] != "1/2" || subsets[1] != "2/2" {
			t.Errorf("read-data parts %v, want 1/2 then 2/2", subsets)
		}
		after := countChunks(t, r1)
		if after >= before {
			t.Errorf("chunks on the repository: %d before, %d after the maintenance gc", before, after)
		}
		t.Logf("maintenance gc: %d chunk files before, %d after", before, after)
		c.e.ok("verify", "--repo", r1) // what is left is whole
		out := c.e.ok("job", "list")
		if !strings.Contains(out, "NEXT RUN") || !strings.Contains(out, "maintenance") {
			t.Errorf("job list:\n%s", out)
		}
	})
}
