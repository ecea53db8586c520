package api

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

var pathParam = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// mustOpenAPI renders the OpenAPI 3.0 document of routes.
func mustOpenAPI(routes []Route) []byte {
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = operation(rt)
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":   "Holdfast server API",
			"version": "v1",
			"description": "REST API of holdfast server. Authenticate with `Authorization: Bearer <token>`, or " +
				"(the web console) with the login session cookie from POST /api/v1/login plus its CSRF token in " +
				"X-CSRF-Token on POST, PUT and DELETE; x-required-permission and x-allowed-roles give who may call each operation.",
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearerAuth": map[string]any{"type": "http", "scheme": "bearer"},
				"sessionCookie": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie}},
			"schemas": map[string]any{"Error": map[string]any{
				"type":     "object",
				"required": []string{"error", "code"},
				"properties": map[string]any{
					"error": map[string]any{"type": "string"},
					"code":  map[string]any{"type": "string"},
				},
			}},
		},
		"security": []any{map[string]any{"bearerAuth": []string{}}, map[string]any{"sessionCookie": []string{}}},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("api: openapi document: %v", err))
	}
	return append(b, '\n')
}

// operation is the OpenAPI operation object of rt.
func operation(rt Route) map[string]any {
	roles := rt.Perm.Roles()
	if roles == nil {
		roles = []configdb.Role{}
	}
	op := map[string]any{
		"operationId":           operationID(rt),
		"summary":               rt.Summary,
		"description":           fmt.Sprintf("Requires permission %q (roles: %v).", rt.Perm, roles),
		"x-required-permission": rt.Perm,
		"x-allowed-roles":       roles,
		"responses":             responses(rt),
	}
	switch rt.Perm {
	case PermPublic:
		op["security"] = []any{}
		op["description"] = "No authentication required."
	case PermJoinToken:
		op["security"] = []any{}
		op["description"] = "Authenticated by the one-time agent join token in the request body (no bearer token)."
	case PermAgent:
		op["security"] = []any{}
		op["description"] = "Authenticated by the agent's client certificate, issued by the server's CA (mutual TLS; no bearer token)."
	case PermSession:
		op["description"] = "Requires a console user's login session (cookie and X-CSRF-Token), any role; API tokens get 403."
	case PermLogin:
		op["security"] = []any{}
		op["description"] = "Authenticated by the user's password (and TOTP code) in the request body (no bearer token)."
	}
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
		params = append(params, map[string]any{
			"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"},
		})
	}
	if params != nil {
		op["parameters"] = params
	}
	if rt.Body {
		op["requestBody"] = map[string]any{
			"required": true,
			"content":  map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}},
		}
	}
	return op
}

func responses(rt Route) map[string]any {
	errResp := func(d string) map[string]any {
		return map[string]any{"description": d, "content": map[string]any{
			"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
	}
	out := map[string]any{
		"2XX":     map[string]any{"description": "Success"},
		"default": errResp("Error (400 invalid request, 404 not found, 409 conflict, 500 internal)"),
	}
	switch rt.Perm {
	case PermPublic:
	case PermJoinToken:
		out["401"] = errResp("Missing, unknown, expired or already used join token")
		out["403"] = errResp("The join token is for another agent role")
		out["503"] = errResp("The server has no CA")
	case PermAgent:
		out["401"] = errResp("Missing, unverified or revoked agent client certificate")
		out["403"] = errResp("The certificate is not an agent's")
	case PermLogin:
		out["401"] = errResp("Wrong user name, password or one-time code")
		out["429"] = errResp("The user is locked after failed logins, or the address failed too often")
	default:
		out["401"] = errResp("Missing or invalid bearer token or login session")
		out["403"] = errResp("The caller's role may not call this operation, or a login session's request lacks its CSRF token")
	}
	return out
}

// operationID is e.g. "post_api_v1_jobs_name_run".
func operationID(rt Route) string {
	id := strings.ToLower(rt.Method) + "_" + strings.Trim(rt.Path, "/")
	return strings.NewReplacer("/", "_", "{", "", "}", "", ".", "_", "-", "_").Replace(id)
}
