package repo

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func testScan(point, engine, result string, n int) ScanRecord {
	s := ScanRecord{Point: point, Engine: engine, EngineVersion: "ClamAV 1.4.6", Database: "sha256:ab",
		Time: time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC), Result: result, FindingsCount: n, Policy: ScanPolicy}
	for range n {
		s.Findings = append(s.Findings, ScanFinding{Filesystem: "disk0-p1", Path: "/a\nb: c", Signature: "Eicar"})
	}
	return s
}

// TestScanRecords: a record reads back (sealed, bound to its name), the
// newest per engine replaces the older, findings are capped, a point
// forgotten takes its records with it, and gc removes orphans.
func TestScanRecords(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[enc], func(t *testing.T) {
			ctx := context.Background()
			r, be := newTestRepo(t, enc)
			m1 := commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
			m2 := commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(2, MinChunkSize)}})
			if err := r.PutScan(ctx, testScan(m1.ID, "clamscan", ScanClean, 0)); err != nil {
				t.Fatal(err)
			}
			inf := testScan(m1.ID, "clamscan", ScanInfected, MaxScanFindings+5)
			inf.Time = inf.Time.Add(time.Hour)
			if err := r.PutScan(ctx, inf); err != nil {
				t.Fatal(err)
			}
			if err := r.PutScan(ctx, testScan(m1.ID, "yara", ScanClean, 0)); err != nil {
				t.Fatal(err)
			}
			if err := r.PutScan(ctx, testScan(m2.ID, "yara", ScanFailed, 0)); err != nil {
				t.Fatal(err)
			}
			all, damaged, err := r.Scans(ctx, "")
			if err != nil || len(damaged) != 0 || len(all[m1.ID]) != 2 || len(all[m2.ID]) != 1 {
				t.Fatalf("scans: %+v %v %v", all, damaged, err)
			}
			newest := all[m1.ID][0]
			if newest.Result != ScanInfected || newest.FindingsCount != MaxScanFindings+5 || len(newest.Findings) != MaxScanFindings ||
				newest.Findings[0].Path != "/a\nb: c" {
				t.Fatalf("newest record of %s: %+v", m1.ID, newest)
			}
			if !newest.Same("clamscan", "ClamAV 1.4.6", "sha256:ab") || newest.Same("clamscan", "ClamAV 1.4.6", "sha256:cd") {
				t.Fatal("Same")
			}
			if old := newest; func() bool { old.Policy = 0; return old.Same("clamscan", "ClamAV 1.4.6", "sha256:ab") }() {
				t.Fatal("Same")
			}
			// A record moved to another point's name does not load.
			b, _ := be.Load(ctx, scanName(m1.ID, "yara"))
			if err := be.Save(ctx, scanName(m2.ID, "clamscan"), b); err != nil {
				t.Fatal(err)
			}
			one, damaged, err := r.Scans(ctx, m2.ID)
			if err != nil || len(one[m2.ID]) != 1 || len(damaged) != 1 || !errors.Is(damaged[0], ErrCorrupt) {
				t.Fatalf("moved record: %+v %v %v", one, damaged, err)
			}
			if err := r.RemovePoint(ctx, m1); err != nil {
				t.Fatal(err)
			}
			if exists(t, be, "scans/"+m1.ID+"/clamscan") || exists(t, be, "scans/"+m1.ID+"/yara") {
				t.Fatalf("forget left the scan records:\n%s", listAll(t, be))
			}
			if err := r.PutScan(ctx, testScan(m1.ID, "yara", ScanClean, 0)); !errors.Is(err, ErrPointNotFound) || exists(t, be, scanName(m1.ID, "yara")) {
				t.Fatalf("record a scan of a forgotten point: %v", err)
			}
			// An orphan (left by a holdfast that did not know scan records) goes with gc.
			if err := be.Save(ctx, scanName(m1.ID, "clamscan"), b); err != nil {
				t.Fatal(err)
			}
			res, err := r.GC(ctx, GCOptions{})
			if err != nil || res.RemovedScans != 1 || exists(t, be, scanName(m1.ID, "clamscan")) || !exists(t, be, scanName(m2.ID, "yara")) {
				t.Fatalf("gc: %+v %v\n%s", res, err, listAll(t, be))
			}
		})
	}
}

func TestScanRecordRefused(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t, true)
	m := commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, nil})
	for name, s := range map[string]ScanRecord{
		"bad point":      testScan("../x", "clamscan", ScanClean, 0),
		"bad engine":     testScan(m.ID, "../clam", ScanClean, 0),
		"bad result":     testScan(m.ID, "clamscan", "fine", 0),
		"clean, 1 found": testScan(m.ID, "clamscan", ScanClean, 1),
	} {
		if err := r.PutScan(ctx, s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzUnmarshalScanRecord(f *testing.F) {
	for _, s := range []ScanRecord{testScan("0123456789abcdef", "clamscan", ScanInfected, 2), testScan("0123456789abcdef", "yara", ScanClean, 0)} {
		s.Version = 1
		b, _ := json.Marshal(s)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`{"version":1,"point":"0123456789abcdef","engine":"x","result":"clean","findings_count":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalScanRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
			return
		}
		if s.validate() != nil || strings.Contains(s.Point, "/") {
			t.Fatalf("accepted an invalid record: %+v", s)
		}
	})
}

// TestPutSealedScan: the agent's side of a scan record a proxy sealed:
// stored once (a repeat of the same blob is fine, another one is refused:
// a result is never replaced), only for an existing point, only when it
// opens with this repository's key as the scan record of that name.
func TestPutSealedScan(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t, true)
	other, _ := newTestRepo(t, true)
	m1 := commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	m2 := commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(2, MinChunkSize)}})
	seal := func(r *Repository, s ScanRecord) []byte {
		t.Helper()
		_, b, err := r.SealScan(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	inf := seal(r, testScan(m1.ID, "clamscan", ScanInfected, 2))
	if s, err := r.PutSealedScan(ctx, m1.ID, "clamscan", inf); err != nil || s.FindingsCount != 2 {
		t.Fatalf("store: %+v %v", s, err)
	}
	if _, err := r.PutSealedScan(ctx, m1.ID, "clamscan", inf); err != nil {
		t.Fatalf("the same blob again: %v", err)
	}
	if _, err := r.PutSealedScan(ctx, m1.ID, "clamscan", seal(r, testScan(m1.ID, "clamscan", ScanClean, 0))); !errors.Is(err, ErrScanExists) {
		t.Fatalf("a clean record over an infected one: %v", err)
	}
	all, _, err := r.Scans(ctx, m1.ID)
	if err != nil || len(all[m1.ID]) != 1 || all[m1.ID][0].Result != ScanInfected {
		t.Fatalf("records: %+v %v", all, err)
	}
	manifest, _ := be.Load(ctx, manifestName(m2.ID))
	for name, tc := range map[string]struct {
		point, engine string
		blob          []byte
		want          error
	}{
		"other point's record": {m2.ID, "clamscan", seal(r, testScan(m1.ID, "clamscan", ScanClean, 0)), ErrCorrupt},
		"other engine's name":  {m2.ID, "yara", seal(r, testScan(m2.ID, "clamscan", ScanClean, 0)), ErrCorrupt},
		"other key":            {m2.ID, "clamscan", seal(other, testScan(m2.ID, "clamscan", ScanClean, 0)), ErrCorrupt},
		"a manifest":           {m2.ID, "clamscan", manifest, ErrCorrupt},
		"garbage":              {m2.ID, "clamscan", []byte("not a blob"), ErrCorrupt},
		"no such point":        {"0123456789abcdef", "clamscan", seal(r, testScan("0123456789abcdef", "clamscan", ScanClean, 0)), ErrPointNotFound},
	} {
		if _, err := r.PutSealedScan(ctx, tc.point, tc.engine, tc.blob); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if exists(t, be, scanName(m2.ID, "clamscan")) || exists(t, be, scanName(m2.ID, "yara")) || exists(t, be, scanName("0123456789abcdef", "clamscan")) {
		t.Fatalf("a refused record was stored:\n%s", listAll(t, be))
	}
}
