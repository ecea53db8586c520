package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

func testPoints(n int) []*repo.Manifest {
	var ps []*repo.Manifest
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		ps = append(ps, &repo.Manifest{ID: fmt.Sprintf("%016x", i+1), VM: "vm", Time: t0.Add(time.Duration(i) * time.Hour)})
	}
	return ps
}

// TestFindClean: the newest clean point, with few scans, for several
// infection patterns among five points.
func TestFindClean(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		infected string // per point, oldest first: x infected, . clean
		want     int    // index of the point found, -1 none
		maxScans int    // 1 + ⌈log2 5⌉ at most
	}{
		{"all clean", ".....", 4, 1},
		{"newest infected", "....x", 3, 3},
		{"infected from point 3", "..xxx", 1, 3},
		{"infected from point 2", ".xxxx", 0, 4},
		{"all infected", "xxxxx", -1, 4},
		{"cleaned up later", "..xx.", 4, 1},
		{"intermittent", ".x.xx", 2, 3}, // not monotone: still a point checked clean
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := testPoints(len(tc.infected))
			scans := map[string]int{}
			check := func(_ context.Context, m *repo.Manifest) (string, error) {
				scans[m.ID]++
				for i, p := range ps {
					if p == m && tc.infected[i] == 'x' {
						return repo.ScanInfected, nil
					}
				}
				return repo.ScanClean, nil
			}
			got, err := FindClean(ctx, ps, check)
			if err != nil {
				t.Fatal(err)
			}
			want := (*repo.Manifest)(nil)
			if tc.want >= 0 {
				want = ps[tc.want]
			}
			if got != want || len(scans) > tc.maxScans {
				t.Fatalf("found %v (want %v) after %d scans %v", got, want, len(scans), scans)
			}
			for id, n := range scans {
				if n != 1 {
					t.Fatalf("point %s scanned %d times", id, n)
				}
			}
			if got != nil && scans[got.ID] != 1 {
				t.Fatalf("point %s returned without being checked", got.ID)
			}
		})
	}
	boom := errors.New("boom")
	if _, err := FindClean(ctx, testPoints(5), func(context.Context, *repo.Manifest) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("check error: %v", err)
	}
	if got, err := FindClean(ctx, nil, nil); got != nil || err != nil {
		t.Fatal("no points")
	}
}

// memRecords keeps scan records in memory.
type memRecords map[string][]repo.ScanRecord

func (m memRecords) Scans(_ context.Context, point string) (map[string][]repo.ScanRecord, []error, error) {
	return map[string][]repo.ScanRecord{point: m[point]}, nil, nil
}

func (m memRecords) PutScan(_ context.Context, s repo.ScanRecord) error {
	m[s.Point] = append([]repo.ScanRecord{s}, m[s.Point]...)
	return nil
}

// dirMounter "publishes" point i as the directory dirs[i], counting
// mounts and releases.
type dirMounter struct {
	dirs             map[string]string
	mounts, releases int
	fail             error
	problems         []string
}

func (d *dirMounter) mount(_ context.Context, m *repo.Manifest) (*Mounted, error) {
	if d.fail != nil {
		return nil, d.fail
	}
	d.mounts++
	return &Mounted{Targets: []Target{{Name: "disk0-p1", Root: d.dirs[m.ID]}}, Problems: d.problems, Release: func(context.Context) error {
		d.releases++
		return nil
	}}, nil
}

// TestCheckerReuse: Check scans a point once per engine identity, records
// it, and reuses the record; a changed database scans again; every
// publish is undone, also when the scan is interrupted.
func TestCheckerReuse(t *testing.T) {
	ctx := context.Background()
	opts := realEngineOptions(t, Yara)
	e, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	ps := testPoints(5)
	dm := &dirMounter{dirs: map[string]string{}}
	for i, p := range ps {
		dm.dirs[p.ID] = t.TempDir()
		if i >= 2 { // infected from point 3 on
			if err := os.WriteFile(filepath.Join(dm.dirs[p.ID], "x.com"), []byte(Eicar), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	recs := memRecords{}
	c := &Checker{Engine: e, Mount: dm.mount, Records: recs}
	got, err := FindClean(ctx, ps, c.Check)
	if err != nil || got != ps[1] || dm.mounts != 3 || dm.releases != 3 {
		t.Fatalf("found %v %v after %d mounts, %d releases", got, err, dm.mounts, dm.releases)
	}
	if r := recs[ps[2].ID]; len(r) != 1 || r[0].Result != repo.ScanInfected || r[0].Findings[0].Path != "/x.com" {
		t.Fatalf("record of point 3: %+v", r)
	}
	// Again: every answer is recorded, nothing is scanned.
	if got, err = FindClean(ctx, ps, c.Check); err != nil || got != ps[1] || dm.mounts != 3 {
		t.Fatalf("second search: %v %v, %d mounts", got, err, dm.mounts)
	}
	// Other rules: scanned again.
	if err := os.WriteFile(opts.YaraRules, []byte("rule other { strings: $e = \"EICAR-STANDARD\" condition: $e }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e2, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	c2 := &Checker{Engine: e2, Mount: dm.mount, Records: recs}
	if got, err = FindClean(ctx, ps, c2.Check); err != nil || got != ps[1] || dm.mounts != 6 {
		t.Fatalf("new rules: %v %v, %d mounts", got, err, dm.mounts)
	}
	// A publish that fails is a failed scan, recorded, and an error.
	dm.fail = errors.New("no loop device")
	c3 := &Checker{Engine: e, Mount: dm.mount, Records: memRecords{}}
	if _, err := c3.Check(ctx, ps[0]); !errors.Is(err, ErrNotScanned) {
		t.Fatalf("failed publish: %v", err)
	}
	dm.fail = nil
	// Interrupted: unpublished all the same.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c3.ScanPoint(cctx, ps[4]); !errors.Is(err, context.Canceled) || dm.mounts != dm.releases {
		t.Fatalf("interrupted: %v, %d mounts, %d releases", err, dm.mounts, dm.releases)
	}
}

// TestRecordedWithDefaultLimitsNotReused: a clean result recorded by a
// clamscan run with its default limits (files over 100 MiB skipped) is
// not taken for a scan with the raised ones.
func TestRecordedWithDefaultLimitsNotReused(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, realEngineOptions(t, ClamScan))
	if err != nil {
		t.Fatal(err)
	}
	p := testPoints(1)[0]
	recs := memRecords{p.ID: {{Point: p.ID, Engine: ClamScan, EngineVersion: strings.TrimSuffix(e.Version(), clamLimitsVersion),
		Database: e.Database(), Result: repo.ScanClean, Policy: repo.ScanPolicy}}}
	c := &Checker{Engine: e, Records: recs}
	if s, ok, err := c.Recorded(ctx, p); err != nil || ok {
		t.Fatalf("reused %+v (%v)", s, err)
	}
}

// TestRecordedBeforePolicyNotReused: a clean record in the shape written
// before the completeness policy (no "policy": a yara scan, or one made
// while a volume was not published) is scanned again; the same record
// with the current policy is reused.
func TestRecordedBeforePolicyNotReused(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, Options{Program: fakeEngine(t, "ClamAV 1.4.6", "", "", 0), ClamAVDB: testDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	p := testPoints(1)[0]
	for _, tc := range []struct {
		policy string
		reused bool
	}{{"", false}, {`, "policy": 1`, false}, {`, "policy": 2`, true}} {
		old := fmt.Sprintf(`{"version": 1, "point": %q, "engine": "clamscan", "engine_version": %q, "database": %q,
			"time": "2026-11-01T00:00:00Z", "duration_seconds": 1, "result": "clean", "findings_count": 0%s}`,
			p.ID, e.Version(), e.Database(), tc.policy)
		rec, err := repo.UnmarshalScanRecord([]byte(old))
		if err != nil {
			t.Fatal(err)
		}
		c := &Checker{Engine: e, Records: memRecords{p.ID: {rec}}}
		if _, ok, err := c.Recorded(ctx, p); err != nil || ok != tc.reused {
			t.Errorf("record%s: reused %v (%v), want %v", tc.policy, ok, err, tc.reused)
		}
	}
}

// TestProblemsAreNotClean: a point publish could not publish whole (here a
// guest volume group named as one of the host's, so its volumes were not
// mounted) is not clean: not fully scanned, or infected if found.
func TestProblemsAreNotClean(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, realEngineOptions(t, Yara))
	if err != nil {
		t.Fatal(err)
	}
	ps := testPoints(2)
	dm := &dirMounter{dirs: map[string]string{ps[0].ID: t.TempDir(), ps[1].ID: t.TempDir()},
		problems: []string{"volume group cl skipped: a volume group of that name is active on this host\x1b[2J"}}
	if err := os.WriteFile(filepath.Join(dm.dirs[ps[1].ID], "x.com"), []byte(Eicar), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Checker{Engine: e, Mount: dm.mount}
	rep, err := c.ScanPoint(ctx, ps[0])
	if err != nil || rep.Result != repo.ScanFailed || !strings.Contains(rep.Error, "not fully scanned: volume group cl skipped") ||
		strings.Contains(rep.Error, "\x1b") {
		t.Fatalf("clean files, volume group not published: %+v %v", rep, err)
	}
	if !errors.Is(rep.Err(), ErrNotScanned) {
		t.Errorf("err %v", rep.Err())
	}
	if rep, err = c.ScanPoint(ctx, ps[1]); err != nil || rep.Result != repo.ScanInfected || !strings.Contains(rep.Error, "not fully scanned") {
		t.Fatalf("infected, volume group not published: %+v %v", rep, err)
	}
}

type failingRecords struct{ memRecords }

func (failingRecords) PutScan(context.Context, repo.ScanRecord) error {
	return errors.New("read-only repository")
}

// TestScanPointRecordFails: a scan whose result cannot be recorded still
// reports what it found, with the error beside it, and unpublishes.
func TestScanPointRecordFails(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, realEngineOptions(t, Yara))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.com"), []byte(Eicar), 0o644); err != nil {
		t.Fatal(err)
	}
	ps := testPoints(1)
	dm := &dirMounter{dirs: map[string]string{ps[0].ID: dir}}
	c := &Checker{Engine: e, Mount: dm.mount, Records: failingRecords{memRecords{}}}
	rep, err := c.ScanPoint(ctx, ps[0])
	if err == nil || !strings.Contains(err.Error(), "read-only") || rep.Result != repo.ScanInfected || rep.Count != 1 || dm.releases != 1 {
		t.Fatalf("report %+v, error %v, %d releases", rep, err, dm.releases)
	}
}
