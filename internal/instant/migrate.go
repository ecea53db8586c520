package instant

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
)

// PointOf reads the manifest a session's redo data applies to.
func PointOf(redoDir string) (*repo.Manifest, error) {
	b, err := os.ReadFile(filepath.Join(redoDir, "point.json"))
	if err != nil {
		return nil, fmt.Errorf("redo directory %s: %w", redoDir, err)
	}
	var m repo.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("redo directory %s: point.json: %w", redoDir, err)
	}
	return &m, nil
}

// MigrateStats counts a migration's work.
type MigrateStats struct {
	Bytes      int64 `json:"bytes"`       // disk size
	Written    int64 `json:"written"`     // data bytes written to the target
	FromRedo   int64 `json:"from_redo"`   // bytes the VM had written (redo)
	ZeroBlocks int64 `json:"zero_blocks"` // blocks left as holes / unallocated
}

// Migrate writes disk n of the point with the session's redo applied — what
// the VM saw — to the image at to (raw, or qcow2 for a .qcow2 name). The
// session must not be serving (its overlay files are read here).
func Migrate(ctx context.Context, s repo.PointReader, redoDir string, n int, to string) (MigrateStats, error) {
	var st MigrateStats
	m, err := PointOf(redoDir)
	if err != nil {
		return st, err
	}
	if n < 0 || n >= len(m.Disks) {
		return st, fmt.Errorf("point %s has %d disk(s); disk %d does not exist", m.ID, len(m.Disks), n)
	}
	d, err := restorefs.OpenDisk(ctx, s, m, n, restorefs.Options{})
	if err != nil {
		return st, err
	}
	defer d.Close()
	ov, err := restorefs.OpenOverlay(filepath.Join(redoDir, "disk-"+strconv.Itoa(n)), d, d.Size(), restorefs.OverlayOptions{})
	if err != nil {
		return st, err
	}
	defer ov.Close()
	for _, w := range ov.Written() {
		st.FromRedo += w.Length
	}
	size := d.Size()
	st.Bytes = size
	// Migrating onto an existing image replaces it (as before), atomically.
	t, err := pipeline.OpenTarget(ctx, to, size, pipeline.TargetOptions{Force: true})
	if err != nil {
		return st, err
	}
	w, finish, abort, writeZeros := t.W, t.Close, t.Abort, t.WriteZeros
	block := int64(d.ChunkSize())
	buf := make([]byte, block)
	zero := make([]byte, block)
	for off := int64(0); off < size; off += block {
		if err := ctx.Err(); err != nil {
			abort()
			return st, err
		}
		l := min(block, size-off)
		p := buf[:l]
		if _, err := ov.ReadAt(p, off); err != nil {
			abort()
			return st, fmt.Errorf("read disk %d at %d: %w", n, off, err)
		}
		if !writeZeros && bytes.Equal(p, zero[:l]) {
			st.ZeroBlocks++ // a fresh target reads zeros there already
			continue
		}
		if _, err := w.WriteAt(p, off); err != nil {
			abort()
			return st, fmt.Errorf("write %s at %d: %w", to, off, err)
		}
		st.Written += l
	}
	return st, finish()
}
