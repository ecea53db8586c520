package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// NewPointID returns a fresh restore point ID (16 hex digits).
func (r *Repository) NewPointID() string { return randomHex(8) }

func manifestName(id string) string        { return "points/" + id }
func indexName(id string, disk int) string { return fmt.Sprintf("indexes/%s/disk-%d", id, disk) }

// SaveIndex stores the index of one disk of a point being written and
// returns the hash to record in the manifest. The index stays invisible
// until CommitPoint writes the manifest.
func (r *Repository) SaveIndex(ctx context.Context, pointID string, disk int, ix *Index) (ChunkID, error) {
	plain, err := ix.MarshalBinary()
	if err != nil {
		return ChunkID{}, err
	}
	return r.SaveIndexBytes(ctx, pointID, disk, plain)
}

// SaveIndexBytes is SaveIndex for an index already in its stored plain
// form (Index.MarshalBinary, IndexEncoder.Bytes), which it checks first.
func (r *Repository) SaveIndexBytes(ctx context.Context, pointID string, disk int, plain []byte) (ChunkID, error) {
	pre := r.codec.headroom()
	return r.saveIndexBuffer(ctx, pointID, disk, append(make([]byte, pre, pre+len(plain)+tagLen), plain...))
}

// SaveEncodedIndex is SaveIndex for an index a backup built with an
// IndexEncoder: it is read back once into the buffer it is sealed in, the
// only copy of it in memory.
func (r *Repository) SaveEncodedIndex(ctx context.Context, pointID string, disk int, enc *IndexEncoder) (ChunkID, error) {
	pre := r.codec.headroom()
	buf, err := enc.AppendTo(make([]byte, pre, pre+enc.Len()+tagLen))
	if err != nil {
		return ChunkID{}, fmt.Errorf("store index: %w", err)
	}
	return r.saveIndexBuffer(ctx, pointID, disk, buf)
}

// saveIndexBuffer checks, hashes and stores the plain index in
// buf[headroom:], sealing it in place.
func (r *Repository) saveIndexBuffer(ctx context.Context, pointID string, disk int, buf []byte) (ChunkID, error) {
	plain := buf[r.codec.headroom():]
	if _, _, err := CheckIndex(plain); err != nil {
		return ChunkID{}, fmt.Errorf("store index: %w", err)
	}
	hash := r.NewHasher().Sum(plain)
	name := indexName(pointID, disk)
	if err := r.saveStamped(ctx, name, r.codec.sealInPlace(kindIndex, []byte(name), buf)); err != nil {
		return ChunkID{}, fmt.Errorf("store index: %w", err)
	}
	return hash, nil
}

// CommitPoint makes a restore point visible: it syncs every chunk and index
// written so far, then writes the manifest atomically and syncs again.
func (r *Repository) CommitPoint(ctx context.Context, m *Manifest) error {
	m.Version = 1
	if err := ValidateVMName(m.VM); err != nil {
		return err
	}
	// The ID is a file name, and a manifest LoadManifest rejects would
	// hide the point or break listing every point.
	if err := m.validate(); err != nil {
		return fmt.Errorf("commit point %q: %v", m.ID, err)
	}
	if err := r.be.Sync(ctx); err != nil {
		return fmt.Errorf("commit point: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	name := manifestName(m.ID)
	if err := r.be.Save(ctx, name, r.codec.seal(kindManifest, []byte(name), b)); err != nil {
		return fmt.Errorf("commit point: %w", err)
	}
	if err := r.be.Sync(ctx); err != nil {
		return fmt.Errorf("commit point: %w", err)
	}
	return nil
}

// LoadManifest reads one restore point's manifest.
func (r *Repository) LoadManifest(ctx context.Context, id string) (*Manifest, error) {
	name := manifestName(id)
	b, err := r.be.Load(ctx, name)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", id, ErrPointNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	sealed := slices.Clone(b) // open decrypts in place
	m, err := r.openManifest(id, b)
	if err == nil {
		r.cacheManifest(id, sealed)
	}
	return m, err
}

// openManifest opens and checks the sealed manifest blob of a point.
func (r *Repository) openManifest(id string, b []byte) (*Manifest, error) {
	name := manifestName(id)
	plain, err := r.codec.open(b, kindManifest, []byte(name), maxMetadata, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	m, err := UnmarshalManifest(plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("%s: %w: manifest names point %s", name, ErrCorrupt, m.ID)
	}
	return m, nil
}

// LoadIndex reads and checks the index of one disk of a point.
func (r *Repository) LoadIndex(ctx context.Context, m *Manifest, disk int) (*Index, error) {
	plain, err := r.loadIndexPlain(ctx, m, disk)
	if err != nil {
		return nil, err
	}
	ix, err := UnmarshalIndex(plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", indexName(m.ID, disk), err)
	}
	return ix, nil
}

// WalkIndex is LoadIndex without the decoded entries: it sets ix's
// geometry and calls fn with every entry in order, once the whole index
// is checked. It holds only the stored blob (an index of distinct chunks
// is stored raw and read in place), so GC and verify can go through the
// indexes of large disks at 33 bytes per entry rather than 40 more.
func (r *Repository) WalkIndex(ctx context.Context, m *Manifest, disk int, ix *Index, fn func(IndexEntry)) error {
	plain, err := r.loadIndexPlain(ctx, m, disk)
	if err != nil {
		return err
	}
	name := indexName(m.ID, disk)
	if _, err := walkIndex(plain, ix, fn); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// loadIndexPlain loads, opens and checks the plain bytes of an index
// against the manifest (hash and geometry).
func (r *Repository) loadIndexPlain(ctx context.Context, m *Manifest, disk int) ([]byte, error) {
	if disk < 0 || disk >= len(m.Disks) {
		return nil, fmt.Errorf("point %s has no disk %d (it has %d)", m.ID, disk, len(m.Disks))
	}
	name := indexName(m.ID, disk)
	b, err := r.be.Load(ctx, name)
	if err != nil {
		return nil, loadError(name, err)
	}
	plain, err := r.codec.open(b, kindIndex, []byte(name), maxMetadata, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d := m.Disks[disk]
	if r.NewHasher().Sum(plain) != d.IndexHash {
		return nil, fmt.Errorf("%s: %w: does not match the manifest's hash", name, ErrCorrupt)
	}
	ix, _, err := CheckIndex(plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if ix.DiskSize != d.Size || ix.ChunkSize != d.ChunkSize {
		return nil, fmt.Errorf("%s: %w: geometry differs from the manifest", name, ErrCorrupt)
	}
	return plain, nil
}

// PointIDs lists the IDs of committed restore points: the files points/<id>
// with a well-formed ID. Other names under points/ are not points (see
// ScanPoints).
func (r *Repository) PointIDs(ctx context.Context) ([]string, error) {
	ids, _, err := r.pointFiles(ctx)
	return ids, err
}

// pointFiles lists points/: the well-formed point IDs, and the names of
// stray files that cannot be points.
func (r *Repository) pointFiles(ctx context.Context) (ids, stray []string, err error) {
	err = r.be.List(ctx, "points", func(fi storage.FileInfo) error {
		id := path.Base(fi.Name)
		if pointIDPattern.MatchString(id) && fi.Name == manifestName(id) {
			ids = append(ids, id)
		} else {
			stray = append(stray, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list points: %w", err)
	}
	sort.Strings(ids)
	sort.Strings(stray)
	return ids, stray, nil
}

// DamagedPoint is a file under points/ that is not a loadable manifest:
// a point whose manifest is unreadable (ID set, Err wraps ErrCorrupt or an
// I/O error), or a stray file whose name is not a point ID (Stray).
type DamagedPoint struct {
	ID    string // the point ID; "" for a stray name
	File  string // the file, relative to the repository
	Stray bool
	Err   error
}

func (d DamagedPoint) String() string {
	if d.Stray {
		return d.File + ": not a restore point (name is not a point ID); ignored"
	}
	return d.Err.Error()
}

// ScanPoints loads every committed manifest, oldest first, and reports the
// files under points/ that do not load apart, so that one damaged
// manifest does not hide the others. The error is for the listing itself.
func (r *Repository) ScanPoints(ctx context.Context) ([]*Manifest, []DamagedPoint, error) {
	ids, stray, err := r.pointFiles(ctx)
	if err != nil {
		return nil, nil, err
	}
	r.pruneManifestCache(ids)
	var damaged []DamagedPoint
	for _, name := range stray {
		damaged = append(damaged, DamagedPoint{File: name, Stray: true})
	}
	ms := make([]*Manifest, 0, len(ids))
	for _, id := range ids {
		m, err := r.loadListedManifest(ctx, id)
		if errors.Is(err, ErrPointNotFound) {
			continue // removed concurrently
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if err != nil {
			damaged = append(damaged, DamagedPoint{ID: id, File: manifestName(id), Err: err})
			continue
		}
		ms = append(ms, m)
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Time.Before(ms[j].Time) })
	return ms, damaged, nil
}

// ListPoints loads every committed manifest, oldest first. Damaged
// manifests and stray files are left out; ScanPoints reports them.
func (r *Repository) ListPoints(ctx context.Context) ([]*Manifest, error) {
	ms, _, err := r.ScanPoints(ctx)
	return ms, err
}

// ResolvePoint finds a point by ID, unique ID prefix, "latest" or
// "VM:latest" (ParseLatest, MatchPrefix: the server resolves the same
// references the same way).
func (r *Repository) ResolvePoint(ctx context.Context, ref string) (*Manifest, error) {
	if _, _, ok := ParseLatest(ref); ok {
		ms, err := r.ListPoints(ctx)
		if err != nil {
			return nil, err
		}
		return ResolveRef(ms, ref)
	}
	ids, err := r.PointIDs(ctx)
	if err != nil {
		return nil, err
	}
	id, err := MatchPrefix(ref, ids)
	if err != nil {
		return nil, err
	}
	return r.LoadManifest(ctx, id)
}

// ResolveRef finds the point ref names among ms (oldest first, as
// ListPoints returns them), as ResolvePoint does: "latest", "VM:latest",
// "VM:latest~N", or an ID or unique ID prefix.
func ResolveRef(ms []*Manifest, ref string) (*Manifest, error) {
	if vm, back, ok := ParseLatest(ref); ok {
		for i := len(ms) - 1; i >= 0; i-- {
			if vm == "" || ms[i].VM == vm {
				if back == 0 {
					return ms[i], nil
				}
				back--
			}
		}
		return nil, fmt.Errorf("%s: %w", ref, ErrPointNotFound)
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	id, err := MatchPrefix(ref, ids)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.ID == id {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", ref, ErrPointNotFound)
}

// maxBack bounds N in "latest~N".
const maxBack = 1 << 20

// ParseLatest reports whether ref names the newest point or one before
// it: "latest" (of any VM: vm is ""), "VM:latest", and with "~N" the Nth
// point before that newest one ("vm1:latest~1" is vm1's second newest;
// back is N).
func ParseLatest(ref string) (vm string, back int, ok bool) {
	if i := strings.LastIndex(ref, "latest~"); i >= 0 && (i == 0 || ref[i-1] == ':') {
		n, err := strconv.Atoi(ref[i+len("latest~"):])
		if err != nil || n < 0 || n > maxBack || strings.HasPrefix(ref[i+len("latest~"):], "+") {
			return "", 0, false
		}
		ref, back = ref[:i+len("latest")], n
	}
	if ref != "latest" && !strings.HasSuffix(ref, ":latest") {
		return "", 0, false
	}
	return strings.TrimSuffix(strings.TrimSuffix(ref, "latest"), ":"), back, true
}

// MatchPrefix returns the one ID among ids that ref is a prefix of (ref
// may be the whole ID; an ID listed twice counts once). None: the error
// wraps ErrPointNotFound; several: it wraps ErrAmbiguous and names up to
// five of them.
func MatchPrefix(ref string, ids []string) (string, error) {
	var match []string
	for _, id := range ids {
		if ref != "" && strings.HasPrefix(id, ref) && !slices.Contains(match, id) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("%s: %w", ref, ErrPointNotFound)
	case 1:
		return match[0], nil
	}
	slices.Sort(match)
	shown := strings.Join(match[:min(len(match), 5)], ", ")
	if len(match) > 5 {
		shown += ", …"
	}
	return "", fmt.Errorf("%s matches %d points (%s): %w; give more of the ID", ref, len(match), shown, ErrAmbiguous)
}

// RemovePoint deletes a restore point: the manifest first (so the point is
// gone atomically), then its indexes and scan records. Its chunks are left to GC. A held
// point is not removed: the error wraps ErrPointHeld and names the holds.
// The holds are checked again after the manifest is gone, and a hold that
// appeared meanwhile (PutHold) puts the manifest back.
func (r *Repository) RemovePoint(ctx context.Context, m *Manifest) error {
	if err := r.checkImmutable(ctx, m); err != nil {
		return err
	}
	if err := r.checkHolds(ctx, m.ID); err != nil {
		return err
	}
	if err := r.checkPointLock(ctx, m); err != nil {
		return err
	}
	name := manifestName(m.ID)
	raw, err := r.be.Load(ctx, name)
	if err != nil && !errors.Is(err, storage.ErrNotExist) {
		return fmt.Errorf("remove point %s: %w", m.ID, err)
	}
	if err := r.be.Remove(ctx, name); err != nil {
		return fmt.Errorf("remove point %s: %w", m.ID, err)
	}
	if err := r.be.Sync(ctx); err != nil {
		return err
	}
	if err := r.checkHolds(ctx, m.ID); err != nil {
		if raw != nil {
			if serr := r.be.Save(ctx, name, raw); serr != nil {
				return fmt.Errorf("%w; putting the manifest back failed: %w", err, serr)
			}
			if serr := r.be.Sync(ctx); serr != nil {
				return fmt.Errorf("%w; putting the manifest back failed: %w", err, serr)
			}
		}
		return err
	}
	for i := range m.Disks {
		if err := r.be.Remove(ctx, indexName(m.ID, i)); err != nil {
			return fmt.Errorf("remove point %s: %w", m.ID, err)
		}
	}
	if err := r.removeScans(ctx, m.ID); err != nil {
		return fmt.Errorf("remove point %s: scan records: %w", m.ID, err)
	}
	return nil
}
