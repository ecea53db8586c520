package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// pages follows X-Next-Cursor from path and returns every item's key.
func pages[T any](t *testing.T, e *env, path string, key func(T) string) (keys []string, n int) {
	t.Helper()
	viewer := e.tokens[configdb.RoleViewer]
	next := path
	for n = 1; n < 20; n++ {
		rec := e.mustDo(viewer, "GET", next, "", 200)
		for _, v := range decodeBody[[]T](t, rec) {
			keys = append(keys, key(v))
		}
		c := rec.Header().Get(NextCursorHeader)
		if c == "" {
			return keys, n
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		next = path + sep + "cursor=" + url.QueryEscape(c)
	}
	t.Fatalf("%s: more than 20 pages", path)
	return nil, n
}

func TestListPaging(t *testing.T) {
	e := newEnv(t) // job j1, its sessions 1 and 2, point p1
	ctx := context.Background()
	for i := range 4 {
		if _, err := e.store.CreateSession(ctx, "j1", "backup"); err != nil {
			t.Fatal(err)
		}
		created := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).Add(time.Duration(i/2) * time.Hour) // pairs share a time
		if _, err := e.store.RecordPoint(ctx, configdb.Point{ID: fmt.Sprintf("q%d", i), Repository: fmt.Sprintf("r%d", i%2),
			VM: "vm1", Created: created}); err != nil {
			t.Fatal(err)
		}
		def := json.RawMessage(`{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"}`)
		if _, err := e.store.CreateJob(ctx, configdb.Job{Name: fmt.Sprintf("k%d", i), Definition: def}); err != nil {
			t.Fatal(err)
		}
	}
	id := func(s apitypes.Session) string { return fmt.Sprint(s.ID) }
	if got, n := pages(t, e, "/api/v1/sessions?limit=2", id); strings.Join(got, ",") != "6,5,4,3,2,1" || n != 4 {
		t.Errorf("sessions in %d pages: %v", n, got)
	}
	if got, n := pages(t, e, "/api/v1/sessions?job=j1&state=running&limit=3", id); strings.Join(got, ",") != "6,5,4,3" || n != 2 {
		t.Errorf("running sessions of j1 in %d pages: %v", n, got)
	}
	point := func(p apitypes.Point) string { return p.ID }
	all := strings.Join(func() []string { k, _ := pages(t, e, "/api/v1/points?limit=100", point); return k }(), ",")
	if got, n := pages(t, e, "/api/v1/points?limit=2", point); strings.Join(got, ",") != all || len(got) != 5 || n != 3 {
		t.Errorf("points in %d pages: %v, want %s", n, got, all)
	}
	if got, _ := pages(t, e, "/api/v1/points?vm=vm1&since=2026-11-20T01:00:00Z", point); len(got) != 3 {
		t.Errorf("points since 01:00: %v (p1, q2, q3)", got)
	}
	job := func(j apitypes.Job) string { return j.Name }
	if got, n := pages(t, e, "/api/v1/jobs?limit=2", job); strings.Join(got, ",") != "j1,k0,k1,k2,k3" || n != 3 {
		t.Errorf("jobs in %d pages: %v", n, got)
	}
	rec := e.mustDo(e.tokens[configdb.RoleViewer], "GET", "/api/v1/jobs", "", 200)
	jobs := decodeBody[[]apitypes.Job](t, rec)
	if len(jobs) != 5 || rec.Header().Get(NextCursorHeader) != "" || jobs[0].LastRun == nil || jobs[0].LastRun.Session != 6 || jobs[1].LastRun != nil {
		t.Errorf("all jobs without a cursor: %+v (header %q)", jobs, rec.Header().Get(NextCursorHeader))
	}
	viewer := e.tokens[configdb.RoleViewer]
	for _, bad := range []string{"/api/v1/points?cursor=garbage", "/api/v1/sessions?cursor=-1", "/api/v1/sessions?since=yesterday",
		"/api/v1/points?since=2026-13-01"} {
		checkError(t, e.do(viewer, "GET", bad, ""), http.StatusBadRequest, "invalid_request")
	}
}
