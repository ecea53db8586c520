package repo

import (
	"context"
	"os"
	"path/filepath"
	"slices"

	"github.com/holdfast-backup/holdfast/internal/atomicfile"
)

// The manifest cache: on object storage a backup lists points/ to find its
// previous point, and loading every manifest cost one GET per point in the
// repository. A committed manifest never changes (forget removes it, nothing
// rewrites it), so the sealed blobs are kept beside the chunk cache
// (<cache dir>/<repository id>/points/<id>) and read from there — only for
// ids the bucket still lists, only during a no-touch backup session (verify
// and gc always read the bucket), and opened and checked exactly as a blob
// from the bucket: a damaged cached blob is dropped and loaded again.

// manifestCacheDir is the manifest cache's directory, "" when not in use.
func (r *Repository) manifestCacheDir() string {
	c := r.cost
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cacheDir == "" || c.noTouch == 0 {
		return ""
	}
	return filepath.Join(c.cacheDir, r.cfg.ID, "points")
}

// cachedManifest returns the cached sealed manifest of a point, or nil.
func (r *Repository) cachedManifest(id string) []byte {
	dir := r.manifestCacheDir()
	if dir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, id))
	if err != nil {
		return nil
	}
	return b
}

// cacheManifest keeps a sealed manifest loaded from the bucket (best effort).
func (r *Repository) cacheManifest(id string, blob []byte) {
	dir := r.manifestCacheDir()
	if dir == "" {
		return
	}
	if os.MkdirAll(dir, 0o700) == nil {
		_ = atomicfile.Write(filepath.Join(dir, id), blob, 0o600)
	}
}

// dropCachedManifest removes a cached manifest that did not open.
func (r *Repository) dropCachedManifest(id string) {
	if dir := r.manifestCacheDir(); dir != "" {
		_ = os.Remove(filepath.Join(dir, id))
	}
}

// pruneManifestCache removes the cached manifests of points the bucket no
// longer lists (forgotten); ids is sorted.
func (r *Repository) pruneManifestCache(ids []string) {
	dir := r.manifestCacheDir()
	if dir == "" {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if _, found := slices.BinarySearch(ids, e.Name()); !found {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// loadListedManifest loads the manifest of a point the bucket just listed:
// from the cache when it holds a copy that opens, else from the bucket.
func (r *Repository) loadListedManifest(ctx context.Context, id string) (*Manifest, error) {
	if b := r.cachedManifest(id); b != nil {
		if m, err := r.openManifest(id, b); err == nil {
			return m, nil
		}
		r.dropCachedManifest(id)
	}
	return r.LoadManifest(ctx, id)
}
