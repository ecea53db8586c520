package configdb

import (
	"context"
	"errors"
	"testing"
	"time"
)

// testPointScans: a point's scan is empty until set, SetPointScan replaces
// it and the listing shows it; an unknown point is ErrNotFound.
func testPointScans(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	if _, err := s.RecordPoint(ctx, Point{ID: "p-1", Repository: "r1", VM: "web1"}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.GetPoint(ctx, "p-1"); err != nil || p.Scan != (PointScan{}) {
		t.Fatalf("a new point's scan: %+v %v", p.Scan, err)
	}
	at := time.Date(2031, 5, 1, 3, 0, 0, 0, time.UTC)
	if err := s.SetPointScan(ctx, "r1", "p-1", PointScan{Engine: "clamscan", Result: "infected", Findings: 2, Time: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPointScan(ctx, "r1", "p-1", PointScan{Engine: "yara", Result: "clean"}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.ListPoints(ctx, PointFilter{VM: "web1"})
	want := PointScan{Engine: "yara", Result: "clean", Time: clk.now().Truncate(time.Microsecond)}
	if err != nil || len(ps) != 1 || !ps[0].Scan.Time.Equal(want.Time) || ps[0].Scan.Engine != want.Engine || ps[0].Scan.Result != want.Result {
		t.Fatalf("listed scan: %+v %v, want %+v", ps, err, want)
	}
	if err := s.SetPointScan(ctx, "r2", "p-1", PointScan{Engine: "yara", Result: "clean"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("scan of an unknown point: %v", err)
	}
	if err := s.SetPointScan(ctx, "r1", "p-1", PointScan{Engine: "yara"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("scan without a result: %v", err)
	}
}
