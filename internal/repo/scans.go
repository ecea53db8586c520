package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// Scan results of a ScanRecord.
const (
	ScanClean    = "clean"
	ScanInfected = "infected"
	ScanFailed   = "failed"
)

// MaxScanFindings bounds the findings a ScanRecord keeps (the first ones;
// FindingsCount counts them all).
const MaxScanFindings = 100

// ScanPolicy is the completeness policy of the scans this holdfast
// records: 2 means clamscan's limits raised and every guest filesystem
// published and scanned (a volume left out makes the scan failed, "not
// fully scanned"). A record of an older policy (none: yara records and
// records made while a volume was not published could say clean for a
// partial scan) is not the same answer and is never reused.
const ScanPolicy = 2

// ScanRecord is the result of a malware scan of a restore point, stored
// as the sealed blob scans/<point>/<engine> (kind 4): one per point and
// engine, the newest replacing the older. It is authenticated like a
// manifest, so only a holder of the repository key writes one that
// reads back.
type ScanRecord struct {
	Version       int           `json:"version"`
	Point         string        `json:"point"`
	Engine        string        `json:"engine"`
	EngineVersion string        `json:"engine_version"`
	Database      string        `json:"database"` // identity of the signatures or rules: "sha256:…"
	Time          time.Time     `json:"time"`
	Duration      float64       `json:"duration_seconds"`
	Result        string        `json:"result"` // ScanClean, ScanInfected, ScanFailed
	FindingsCount int           `json:"findings_count"`
	Findings      []ScanFinding `json:"findings,omitempty"` // the first MaxScanFindings
	Error         string        `json:"error,omitempty"`    // why a failed scan failed
	Policy        int           `json:"policy,omitempty"`   // ScanPolicy when recorded by this holdfast
}

// ScanFinding is one file an engine flagged. Path is relative to the root
// of the guest filesystem, as the guest names it (guest bytes).
type ScanFinding struct {
	Filesystem string `json:"filesystem"`
	Path       string `json:"path"`
	Signature  string `json:"signature"`
}

var scanEnginePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func scanName(point, engine string) string { return "scans/" + point + "/" + engine }

// CheckScanNames checks a point ID and an engine name of a scan record.
func CheckScanNames(point, engine string) error { return checkScanNames(point, engine) }

func checkScanNames(point, engine string) error {
	if !pointIDPattern.MatchString(point) {
		return fmt.Errorf("scan record: invalid point id %q", point)
	}
	if !scanEnginePattern.MatchString(engine) {
		return fmt.Errorf("scan record: invalid engine name %q", engine)
	}
	return nil
}

// Same reports whether the record comes from the same engine, engine
// version and database under the current ScanPolicy, so it stands for a
// scan now.
func (s ScanRecord) Same(engine, version, database string) bool {
	return s.Engine == engine && s.EngineVersion == version && s.Database == database && s.Policy == ScanPolicy
}

func (s ScanRecord) validate() error {
	switch s.Result {
	case ScanClean, ScanInfected, ScanFailed:
	default:
		return fmt.Errorf("unknown result %q", s.Result)
	}
	if s.FindingsCount < len(s.Findings) || s.Result == ScanClean && s.FindingsCount != 0 {
		return fmt.Errorf("findings count %d does not match result %s with %d findings", s.FindingsCount, s.Result, len(s.Findings))
	}
	return checkScanNames(s.Point, s.Engine)
}

// PutScan records a scan of a point, replacing the record of the same
// engine. As PutHold, it writes first and then checks that the point
// still exists; a point removed meanwhile loses the record again and the
// error wraps ErrPointNotFound.
func (r *Repository) PutScan(ctx context.Context, s ScanRecord) error {
	name, blob, err := r.SealScan(s)
	if err != nil {
		return err
	}
	return r.saveScan(ctx, s.Point, name, blob)
}

// SealScan checks a scan record and seals it into the blob stored as
// scans/<point>/<engine> (returned as name): a proxy that holds the
// repository key seals the record itself and hands the blob to
// PutSealedScan on the repository agent.
func (r *Repository) SealScan(s ScanRecord) (name string, blob []byte, err error) {
	s.Version = 1
	if len(s.Findings) > MaxScanFindings {
		s.Findings = s.Findings[:MaxScanFindings]
	}
	if err := s.validate(); err != nil {
		return "", nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", nil, err
	}
	name = scanName(s.Point, s.Engine)
	return name, r.codec.seal(kindScan, []byte(name), b), nil
}

// PutSealedScan stores a scan record sealed by SealScan for point and
// engine, only if the point exists and has no record of that engine yet:
// it never replaces a result (a repeated store of the same blob is not an
// error; another blob is ErrScanExists). The blob must open with this
// repository's key as a scan record under exactly that name and name the
// same point and engine (else ErrCorrupt). It returns the record stored.
func (r *Repository) PutSealedScan(ctx context.Context, point, engine string, blob []byte) (ScanRecord, error) {
	if err := checkScanNames(point, engine); err != nil {
		return ScanRecord{}, err
	}
	name := scanName(point, engine)
	plain, err := r.codec.open(bytes.Clone(blob), kindScan, []byte(name), maxScanRecord, nil)
	if err != nil {
		return ScanRecord{}, fmt.Errorf("sealed scan record %s: %w", name, err)
	}
	s, err := UnmarshalScanRecord(plain)
	if err != nil {
		return ScanRecord{}, fmt.Errorf("sealed scan record %s: %w", name, err)
	}
	if s.Point != point || s.Engine != engine {
		return ScanRecord{}, fmt.Errorf("sealed scan record %s: %w: it names point %s engine %s", name, ErrCorrupt, s.Point, s.Engine)
	}
	if _, err := r.be.Stat(ctx, manifestName(point)); errors.Is(err, storage.ErrNotExist) {
		return ScanRecord{}, fmt.Errorf("record scan of %s: %w", point, ErrPointNotFound)
	} else if err != nil {
		return ScanRecord{}, fmt.Errorf("record scan of %s: %w", point, err)
	}
	switch old, err := r.be.Load(ctx, name); {
	case err == nil && bytes.Equal(old, blob):
		return s, nil // stored by an earlier try of this request
	case err == nil:
		return ScanRecord{}, fmt.Errorf("record scan of %s by %s: %w", point, engine, ErrScanExists)
	case !errors.Is(err, storage.ErrNotExist):
		return ScanRecord{}, fmt.Errorf("record scan of %s: %w", point, err)
	}
	return s, r.saveScan(ctx, point, name, blob)
}

// saveScan writes a sealed scan record, then checks that its point still
// exists (removing the record again if not).
func (r *Repository) saveScan(ctx context.Context, point, name string, blob []byte) error {
	if err := r.be.Save(ctx, name, blob); err != nil {
		return fmt.Errorf("record scan of %s: %w", point, err)
	}
	if err := r.be.Sync(ctx); err != nil {
		return fmt.Errorf("record scan of %s: %w", point, err)
	}
	if _, err := r.be.Stat(ctx, manifestName(point)); errors.Is(err, storage.ErrNotExist) {
		_ = r.be.Remove(ctx, name)
		return fmt.Errorf("record scan of %s: %w", point, ErrPointNotFound)
	} else if err != nil {
		return fmt.Errorf("record scan of %s: %w", point, err)
	}
	return nil
}

// loadScan reads one scan record file.
func (r *Repository) loadScan(ctx context.Context, name string) (ScanRecord, error) {
	var s ScanRecord
	b, err := r.be.Load(ctx, name)
	if err != nil {
		return s, fmt.Errorf("load %s: %w", name, err)
	}
	plain, err := r.codec.open(b, kindScan, []byte(name), maxScanRecord, nil)
	if err != nil {
		return s, fmt.Errorf("%s: %w", name, err)
	}
	s, err = UnmarshalScanRecord(plain)
	if err != nil {
		return s, fmt.Errorf("%s: %w", name, err)
	}
	if scanName(s.Point, s.Engine) != name {
		return s, fmt.Errorf("%s: %w: record names point %s engine %s", name, ErrCorrupt, s.Point, s.Engine)
	}
	return s, nil
}

// maxScanRecord bounds a scan record's plain size (100 findings of long
// guest paths fit with room to spare).
const maxScanRecord = 4 << 20

// UnmarshalScanRecord parses and checks the plain bytes of a scan record.
func UnmarshalScanRecord(b []byte) (ScanRecord, error) {
	var s ScanRecord
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%w: scan record: %v", ErrCorrupt, err)
	}
	if s.Version != 1 {
		return s, fmt.Errorf("%w: scan record version %d", ErrCorrupt, s.Version)
	}
	if err := s.validate(); err != nil {
		return s, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return s, nil
}

// Scans returns the scan records of one point (point non-empty) or of
// every point, keyed by point, each point's newest first. A record that
// does not load is reported in damaged (by file name) and left out: a
// damaged record hides only itself.
func (r *Repository) Scans(ctx context.Context, point string) (map[string][]ScanRecord, []error, error) {
	dir := "scans"
	if point != "" {
		if !pointIDPattern.MatchString(point) {
			return nil, nil, fmt.Errorf("scan records: invalid point id %q", point)
		}
		dir += "/" + point
	}
	var names []string
	err := r.be.List(ctx, dir, func(fi storage.FileInfo) error {
		p, e := path.Split(fi.Name)
		if checkScanNames(path.Base(p), e) == nil && fi.Name == scanName(path.Base(p), e) {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list scan records: %w", err)
	}
	out := map[string][]ScanRecord{}
	var damaged []error
	for _, name := range names {
		s, err := r.loadScan(ctx, name)
		if errors.Is(err, storage.ErrNotExist) {
			continue // removed with its point meanwhile
		}
		if err != nil {
			damaged = append(damaged, err)
			continue
		}
		out[s.Point] = append(out[s.Point], s)
	}
	for _, ss := range out {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].Time.After(ss[j].Time) })
	}
	return out, damaged, nil
}

// removeScans deletes every scan record of a point.
func (r *Repository) removeScans(ctx context.Context, point string) error {
	return r.be.List(ctx, "scans/"+point, func(fi storage.FileInfo) error {
		return r.be.Remove(ctx, fi.Name)
	})
}

// sweepScans removes the scan records of points that no longer exist
// (forgotten by a holdfast that did not know scan records, or removed
// while a scan was being recorded).
func (r *Repository) sweepScans(ctx context.Context, points map[string]bool, res *GCResult) error {
	return r.be.List(ctx, "scans", func(fi storage.FileInfo) error {
		id := path.Base(path.Dir(fi.Name))
		if points[id] {
			return nil
		}
		if _, err := r.be.Stat(ctx, manifestName(id)); err == nil {
			return nil // committed after the mark phase
		}
		res.RemovedScans++
		return r.be.Remove(ctx, fi.Name)
	})
}
