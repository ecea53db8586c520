package api

import (
	"net/http"
	"strconv"
)

// querySummary parses ?summary= (absent: false): a list without the
// bulky per-item documents (GET /api/v1/jobs leaves out definitions).
func querySummary(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("summary")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("query parameter summary=%q: want true or false", v)
	}
	return b, nil
}
