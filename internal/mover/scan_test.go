package mover

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
)

// TestPutScan: a scan record sealed by the client is stored on the agent
// once; the agent keeps an existing one (409 scan_exists), refuses a point
// it does not hold, a blob that is not the record of that name (422), bad
// names (400), and clients without Access.RecordScans (403).
func TestPutScan(t *testing.T) {
	ctx := context.Background()
	var deny atomic.Bool
	e := newEnv(t, nil, ServerOptions{Authorize: func(*http.Request, string) (Access, error) {
		return Access{Sessions: 1, ListPoints: true, RecordScans: !deny.Load()}, nil
	}})
	c := e.dial(t, e.ts.URL, nil)
	m := backup(t, c, memdisk.Standard(cs), 2)
	rec := repo.ScanRecord{Point: m.ID, Engine: "clamscan", EngineVersion: "ClamAV 1", Database: "sha256:ab",
		Time: time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC), Result: repo.ScanInfected, FindingsCount: 1,
		Findings: []repo.ScanFinding{{Filesystem: "disk0-p1", Path: "/eicar.com", Signature: "Eicar"}}}
	if err := c.PutScan(ctx, rec); err != nil {
		t.Fatal(err)
	}
	all, _, err := e.repo.Scans(ctx, m.ID)
	if err != nil || len(all[m.ID]) != 1 || all[m.ID][0].Findings[0].Path != "/eicar.com" {
		t.Fatalf("stored: %+v %v", all, err)
	}
	clean := rec
	clean.Result, clean.FindingsCount, clean.Findings = repo.ScanClean, 0, nil
	if err := c.PutScan(ctx, clean); !errors.Is(err, repo.ErrScanExists) {
		t.Fatalf("replace a record: %v, want ErrScanExists", err)
	}
	gone := clean
	gone.Point = "0123456789abcdef"
	if err := c.PutScan(ctx, gone); !errors.Is(err, repo.ErrPointNotFound) {
		t.Fatalf("a point the agent does not hold: %v", err)
	}
	for name, tc := range map[string]struct {
		path string
		body []byte
		st   int
		code string
	}{
		"garbage":    {"points/" + m.ID + "/scans/yara", []byte("garbage"), 422, codeCorrupt},
		"bad engine": {"points/" + m.ID + "/scans/..x", []byte("x"), 400, codeBadRequest},
		"bad point":  {"points/x/scans/yara", []byte("x"), 400, codeBadRequest},
	} {
		if st, code, _ := e.request(t, http.MethodPut, APIPrefix+"main/"+tc.path, tc.body); st != tc.st || code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", name, st, code, tc.st, tc.code)
		}
	}
	deny.Store(true)
	yara := clean
	yara.Engine = "yara"
	if err := c.PutScan(ctx, yara); !errors.Is(err, ErrForbidden) {
		t.Fatalf("without RecordScans: %v, want ErrForbidden", err)
	}
}
