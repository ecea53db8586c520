package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

func TestOpenAPIListsEveryRoute(t *testing.T) {
	e := newEnv(t)
	rec := e.mustDo(e.tokens[configdb.RoleViewer], "GET", "/api/v1/openapi.json", "", 200)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	n := 0
	for _, rt := range e.srv.Routes() {
		raw, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("route %s %s missing from the OpenAPI document", rt.Method, rt.Path)
			continue
		}
		n++
		var op struct {
			Summary    string     `json:"summary"`
			Perm       Permission `json:"x-required-permission"`
			Roles      []string   `json:"x-allowed-roles"`
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		if op.Summary != rt.Summary || op.Perm != rt.Perm || len(op.Roles) != len(rt.Perm.Roles()) {
			t.Errorf("%s %s: operation %+v, route %+v", rt.Method, rt.Path, op, rt)
		}
		if strings.Count(rt.Path, "{") != len(op.Parameters) {
			t.Errorf("%s %s: parameters %+v", rt.Method, rt.Path, op.Parameters)
		}
	}
	total := 0
	for _, ops := range doc.Paths {
		total += len(ops)
	}
	if total != n || n != len(e.srv.Routes()) {
		t.Errorf("document has %d operations, routes %d, matched %d", total, len(e.srv.Routes()), n)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.mustDo(e.tokens[configdb.RoleViewer], "GET", "/api/v1/jobs", "", 200)
	body := e.mustDo(e.tokens[configdb.RoleViewer], "GET", "/metrics", "", 200).Body.String()
	if !strings.Contains(body, `holdfast_api_requests_total{code="200",method="GET",route="/api/v1/jobs"}`) {
		t.Fatalf("metrics missing the jobs request:\n%s", body)
	}
}

// TestOpenAPILogin: the login operation needs no bearer token, and the
// document names the session cookie as a way in.
func TestOpenAPILogin(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Paths map[string]map[string]struct {
			Security  []any          `json:"security"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
		Components struct {
			SecuritySchemes map[string]struct {
				In   string `json:"in"`
				Name string `json:"name"`
			} `json:"securitySchemes"`
		} `json:"components"`
	}
	rec := e.mustDo(e.tokens[configdb.RoleViewer], "GET", "/api/v1/openapi.json", "", 200)
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	login := doc.Paths["/api/v1/login"]["post"]
	if login.Security == nil || len(login.Security) != 0 || login.Responses["429"] == nil || login.Responses["403"] != nil {
		t.Errorf("login operation %+v", login)
	}
	if c := doc.Components.SecuritySchemes["sessionCookie"]; c.In != "cookie" || c.Name != SessionCookie {
		t.Errorf("session cookie scheme %+v", c)
	}
}
