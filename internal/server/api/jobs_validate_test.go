package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestJobRefusedWithField: an invalid job is refused when it is created or
// edited, with 400 and a message naming the field, and nothing is stored.
func TestJobRefusedWithField(t *testing.T) {
	e := newEnv(t)
	op := e.tokens[configdb.RoleBackupOperator]
	const vms = `"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"`
	e.mustDo(op, "POST", "/api/v1/jobs", `{"name":"first","definition":{`+vms+`},"schedule":"after second"}`, 201)
	e.mustDo(op, "POST", "/api/v1/jobs", `{"name":"second","definition":{`+vms+`},"schedule":"daily 01:00"}`, 201)
	tests := []struct {
		name, body, field string
		only              string // POST or PUT: test only this method
	}{
		{"cron hour 25", `{"definition":{` + vms + `},"schedule":"0 25 * * *"}`, "schedule", ""},
		{"misspelt daily", `{"definition":{` + vms + `},"schedule":"dayly 03:00"}`, "schedule", ""},
		{"after cycle", `{"definition":{` + vms + `},"schedule":"after first"}`, "schedule", "PUT"},
		{"after itself", `{"definition":{` + vms + `},"schedule":"after new"}`, "schedule", "POST"},
		{"compression", `{"definition":{` + vms + `,"compression":"fast"}}`, "definition.compression", ""},
		{"unknown key", `{"definition":{` + vms + `,"retention_last":3}}`, `retention_last`, ""},
		{"no repository", `{"definition":{"vms":[{"name":"vm1","disks":["/a"]}]}}`, "definition.repository", ""},
		{"no disks", `{"definition":{"vms":["vm1"],"repository":"repo1"}}`, "definition.vms[0].disks", ""},
		{"retention", `{"definition":{` + vms + `,"retention":{"keep_last":-1}}}`, "definition.retention.keep_last", ""},
		{"throttle", `{"definition":{` + vms + `,"throttle":["wan: nowhere -> any 1MiB/s"]}}`, "definition.throttle", ""},
		{"guest policy", `{"definition":{` + vms + `,"guest":{"policy":"shrug"}}}`, "definition.guest.policy", ""},
		{"chunk size", `{"definition":{` + vms + `,"chunk_size":12345}}`, "definition.chunk_size", ""},
		{"format", `{"definition":{` + vms + `,"format":"vhdx"}}`, "definition.format", ""},
		{"wrong type", `{"definition":{` + vms + `,"read_limit":"fast"}}`, "definition.read_limit", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, req := range []struct{ method, path, body string }{
				{"POST", "/api/v1/jobs", `{"name":"new",` + tc.body[1:]},
				{"PUT", "/api/v1/jobs/second", tc.body},
			} {
				if tc.only != "" && tc.only != req.method {
					continue
				}
				rec := e.do(op, req.method, req.path, req.body)
				checkError(t, rec, http.StatusBadRequest, "invalid_request")
				if !strings.Contains(rec.Body.String(), tc.field) {
					t.Errorf("%s %s: %s does not name %s", req.method, req.path, rec.Body, tc.field)
				}
			}
		})
	}
	if _, err := e.store.GetJob(context.Background(), "new"); !errors.Is(err, configdb.ErrNotFound) {
		t.Fatalf("an invalid job was created: %v", err)
	}
	if j, _ := e.store.GetJob(context.Background(), "second"); j.Schedule != "daily 01:00" {
		t.Fatalf("an invalid edit changed job second: %+v", j)
	}
	// A rename takes the old name out of the chains: "first" follows
	// "second", which renamed to "third" may follow "first"; then "first"
	// may no longer follow "third".
	e.mustDo(op, "PUT", "/api/v1/jobs/second", `{"name":"third","definition":{`+vms+`},"schedule":"after first"}`, 200)
	rec := e.do(op, "PUT", "/api/v1/jobs/first", `{"definition":{`+vms+`},"schedule":"after third"}`)
	checkError(t, rec, http.StatusBadRequest, "invalid_request")
	if !strings.Contains(rec.Body.String(), "first → third → first") {
		t.Errorf("cycle message %s", rec.Body)
	}
}
