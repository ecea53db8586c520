package api

import (
	"net/http"
	"strconv"
	"time"
)

// Paging of the list endpoints (sessions, points, jobs): ?limit= bounds a
// page; when a page is full, the answer's NextCursorHeader holds the
// ?cursor= of the next one (absent on the last page). ?since= (RFC 3339)
// selects what started, or was created, at or after a time.

// NextCursorHeader carries the cursor of the next page.
const NextCursorHeader = "X-Next-Cursor"

// querySince parses ?since= (RFC 3339); zero when absent.
func querySince(r *http.Request) (time.Time, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("query parameter since=%q: want an RFC 3339 time such as 2026-12-03T10:00:00Z", v)
	}
	return t.UTC(), nil
}

// queryIDCursor parses a ?cursor= that is a positive ID; 0 when absent.
func queryIDCursor(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("cursor")
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("query parameter cursor=%q: want the %s of a previous page", v, NextCursorHeader)
	}
	return id, nil
}

// nextCursor sets the next page's cursor when the page of got items
// filled the limit of want.
func nextCursor(w http.ResponseWriter, got, want int, cursor func() string) {
	if got > 0 && got == want {
		w.Header().Set(NextCursorHeader, cursor())
	}
}

// pageSize is the page a list endpoint returns for ?limit=n (0: 100, as
// configdb's lists).
func pageSize(n int) int {
	if n <= 0 {
		return 100
	}
	return n
}
