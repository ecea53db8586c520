package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// fakeVMs is the orchestrator's SourceVMs: source s1 holds web-1 (an NBD
// disk whose URL carries a password) and db-1; source "down" fails.
type fakeVMs struct{}

func (fakeVMs) SourceVMs(_ context.Context, sel jobdef.Selection) ([]jobdef.VM, []string, error) {
	if sel.Source == "down" {
		return nil, nil, errors.New("dial tcp 192.0.2.1:443: connection refused")
	}
	var out []jobdef.VM
	for _, vm := range []jobdef.VM{{Name: "web-1", Disks: []string{"nbd://user:s3cret-pw@host/web-1"}},
		{Name: "db-1", Disks: []string{"/images/db-1.img"}}} {
		if ok, _ := path.Match(orStar(sel.Pattern), vm.Name); ok {
			out = append(out, vm)
		}
	}
	if len(out) == 0 {
		return nil, []string{"selection picks no VM"}, nil
	}
	return out, nil, nil
}

func orStar(p string) string {
	if p == "" {
		return "*"
	}
	return p
}

func TestSourceVMs(t *testing.T) {
	e := newEnv(t)
	op := e.tokens[configdb.RoleBackupOperator]
	var got apitypes.SourceVMs
	rec := e.mustDo(op, "GET", "/api/v1/sources/s1/vms", "", http.StatusOK)
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Source != "s1" || len(got.VMs) != 2 || got.VMs[0].Name != "web-1" || got.VMs[1].Disks[0] != "/images/db-1.img" {
		t.Fatalf("VMs of s1: %+v", got)
	}
	if strings.Contains(rec.Body.String(), "s3cret-pw") {
		t.Fatalf("a disk's password reached the answer: %s", rec.Body)
	}
	rec = e.mustDo(op, "GET", "/api/v1/sources/s1/vms?pattern=db-*", "", http.StatusOK)
	got = apitypes.SourceVMs{}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.VMs) != 1 || got.VMs[0].Name != "db-1" {
		t.Fatalf("?pattern=db-*: %s", rec.Body)
	}
	rec = e.mustDo(op, "GET", "/api/v1/sources/s1/vms?pattern=zz*", "", http.StatusOK)
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.VMs) != 0 || len(got.Warnings) != 1 {
		t.Fatalf("?pattern=zz*: %s", rec.Body)
	}
	checkError(t, e.do(op, "GET", "/api/v1/sources/s1/vms?pattern="+url.QueryEscape("[x"), ""), http.StatusBadRequest, "invalid_request")
	checkError(t, e.do(op, "GET", "/api/v1/sources/nope/vms", ""), http.StatusNotFound, "not_found")
	e.mustDo(e.tokens[configdb.RoleAdministrator], "POST", "/api/v1/sources", `{"name":"down","kind":"nbd","definition":{"address":"nbd://192.0.2.1"}}`, http.StatusCreated)
	rec = e.do(op, "GET", "/api/v1/sources/down/vms", "")
	checkError(t, rec, http.StatusBadGateway, "source_failed")
	if !strings.Contains(rec.Body.String(), "connection refused") {
		t.Fatalf("the source's failure is not told: %s", rec.Body)
	}
}

func TestSchedulePreview(t *testing.T) {
	e := newEnv(t) // the clock: 2026-11-22 06:00 UTC
	viewer := e.tokens[configdb.RoleViewer]
	preview := func(q string) apitypes.SchedulePreview {
		t.Helper()
		var p apitypes.SchedulePreview
		rec := e.mustDo(viewer, "GET", "/api/v1/schedule/preview?"+q, "", http.StatusOK)
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := preview("schedule=" + url.QueryEscape("*/15 * * * *") + "&count=3")
	want := time.Date(2026, 11, 22, 6, 15, 0, 0, time.UTC)
	if len(p.Next) != 3 || !p.Next[0].Equal(want) || !p.Next[2].Equal(want.Add(30*time.Minute)) || p.Schedule != "*/15 * * * *" {
		t.Fatalf("*/15: %+v", p)
	}
	if p := preview("schedule=" + url.QueryEscape("0 2 * * *")); len(p.Next) != 5 {
		t.Fatalf("default count: %+v", p)
	} else {
		for i := 1; i < len(p.Next); i++ {
			if !p.Next[i].After(p.Next[i-1]) || p.Next[i].In(time.Local).Hour() != 2 {
				t.Fatalf("0 2 * * *: %v", p.Next)
			}
		}
	}
	if p := preview("schedule=" + url.QueryEscape("after j1")); len(p.Next) != 0 || p.After != "j1" {
		t.Fatalf("after j1: %+v", p)
	}
	if p := preview("schedule="); len(p.Next) != 0 || p.After != "" {
		t.Fatalf("on demand: %+v", p)
	}
	// Refused exactly as a job's schedule is.
	bad := "61 * * * *"
	rec := e.do(viewer, "GET", "/api/v1/schedule/preview?schedule="+url.QueryEscape(bad), "")
	checkError(t, rec, http.StatusBadRequest, "invalid_request")
	job := e.do(e.tokens[configdb.RoleAdministrator], "POST", "/api/v1/jobs",
		`{"name":"j9","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"},"schedule":"`+bad+`","password":"`+fixturePassword+`"}`)
	checkError(t, job, http.StatusBadRequest, "invalid_request")
	var a, b apitypes.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &a)
	_ = json.Unmarshal(job.Body.Bytes(), &b)
	if a.Error == "" || a.Error != b.Error {
		t.Fatalf("preview says %q, job create says %q", a.Error, b.Error)
	}
	for _, q := range []string{"count=0", "count=51", "count=x"} {
		checkError(t, e.do(viewer, "GET", "/api/v1/schedule/preview?schedule=daily+02:00&"+q, ""), http.StatusBadRequest, "invalid_request")
	}
}
