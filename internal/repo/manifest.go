package repo

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Manifest describes one restore point. It is stored, as JSON inside a
// kind-3 blob, under points/<id>; writing it is what commits the point.
type Manifest struct {
	Version  int            `json:"version"`
	ID       string         `json:"id"`
	VM       string         `json:"vm"`
	Time     time.Time      `json:"time"`
	Hostname string         `json:"hostname,omitempty"`
	Disks    []DiskManifest `json:"disks"`
	// Notes carries platform details (guest quiescing result, VM
	// configuration) added by later sources; free-form key/value.
	Notes map[string]string `json:"notes,omitempty"`
	// Config is the VM's hardware configuration when the platform reports
	// one (vSphere), for restoring the whole VM.
	Config *VMConfig `json:"config,omitempty"`
	// CopiedFrom is set on a point that a backup copy (internal/repocopy)
	// wrote: the repository and point it was copied from. The copy keeps
	// the source point's ID, VM, time and disks' geometry.
	CopiedFrom *CopiedFrom `json:"copied_from,omitempty"`
}

// CopiedFrom names the origin of a copied restore point.
type CopiedFrom struct {
	Repository string    `json:"repository"` // the source repository's config ID
	Point      string    `json:"point"`      // the point's ID there (the copy's ID too)
	Time       time.Time `json:"time"`       // when the copy was committed
}

// DiskManifest describes one disk of a restore point.
type DiskManifest struct {
	Index     int    `json:"index"`
	Size      int64  `json:"size"`
	ChunkSize int    `json:"chunk_size"`
	Format    string `json:"format"`
	Location  string `json:"location"`
	// IndexHash is the keyed BLAKE3 of the index's plain bytes.
	IndexHash ChunkID `json:"index_hash"`
	Chunks    int     `json:"chunks"`
	// ChangeID is the CBT state this point captured (empty without CBT);
	// ChangeBase is the previous point's ChangeID whose changes this
	// backup read (set when CBT was used).
	ChangeID   string `json:"change_id,omitempty"`
	ChangeBase string `json:"change_base,omitempty"`
	Transport  string `json:"transport,omitempty"`
	// CBT says how changed blocks were found: "" (no tracking), "used", or
	// "full read: <reason>" when tracking was available but not usable.
	CBT      string   `json:"cbt,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Stats    Stats    `json:"stats"`
	// Excluded is set when the backup left ranges out (free space, swap).
	Excluded *Excluded `json:"excluded,omitempty"`
}

// Stats are the byte counts of one disk's backup.
type Stats struct {
	BytesRead   int64 `json:"bytes_read"`
	BytesZero   int64 `json:"bytes_zero"`
	BytesReused int64 `json:"bytes_reused"`
	BytesNew    int64 `json:"bytes_new"`
	BytesStored int64 `json:"bytes_stored"`
}

// Add accumulates s2 into s.
func (s *Stats) Add(s2 Stats) {
	s.BytesRead += s2.BytesRead
	s.BytesZero += s2.BytesZero
	s.BytesReused += s2.BytesReused
	s.BytesNew += s2.BytesNew
	s.BytesStored += s2.BytesStored
}

// MarshalText encodes a chunk ID as hex (for JSON).
func (id ChunkID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes the hex form.
func (id *ChunkID) UnmarshalText(b []byte) error {
	v, err := ParseChunkID(string(b))
	*id = v
	return err
}

var (
	pointIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)
	vmNamePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)
)

// ValidateVMName checks a VM name: letters, digits and . _ @ + -, at most 128.
func ValidateVMName(s string) error {
	if !vmNamePattern.MatchString(s) {
		return fmt.Errorf("invalid VM name %q: use letters, digits and . _ @ + - (at most 128)", s)
	}
	return nil
}

// UnmarshalManifest decodes and validates a manifest.
func UnmarshalManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return &m, nil
}

// validate checks what UnmarshalManifest requires; CommitPoint checks it
// too, so that it never writes a point that cannot be read back.
func (m *Manifest) validate() error {
	if m.Version != 1 {
		return fmt.Errorf("manifest version %d", m.Version)
	}
	if !pointIDPattern.MatchString(m.ID) || ValidateVMName(m.VM) != nil {
		return fmt.Errorf("bad manifest id or vm name")
	}
	if c := m.CopiedFrom; c != nil && (!pointIDPattern.MatchString(c.Point) || c.Repository == "") {
		return fmt.Errorf("bad copied_from")
	}
	for i, d := range m.Disks {
		if d.Index != i || d.Size < 0 || ValidateChunkSize(d.ChunkSize) != nil || d.Chunks < 0 {
			return fmt.Errorf("bad disk %d", i)
		}
		if err := d.Excluded.validate(d.Size); err != nil {
			return fmt.Errorf("bad disk %d: %v", i, err)
		}
	}
	return nil
}
