package repo

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// recoverDirs are where Recover looks: every file a point needs, and the
// scan records.
var recoverDirs = []string{configFile, keysDir, "points", "indexes", "chunks", "scans"}

// RecoverResult says what Recover brought back.
type RecoverResult struct {
	DryRun bool `json:"dry_run"`
	// Points are the restore points whose manifest came back.
	Points []string `json:"points"`
	// Files counts the files that came back, per top directory ("config",
	// "keys", "points", "indexes", "chunks", "scans").
	Files map[string]int `json:"files"`
	// DeleteMarkers is the number of delete markers removed.
	DeleteMarkers int `json:"removed_delete_markers"`
	// Overwrites is the number of unlocked versions removed that had been
	// written over a locked one.
	Overwrites int `json:"removed_overwrites"`
}

// Recover undoes what a holder of the storage credentials can do to a
// repository in a versioned bucket without deleting locked data: a plain
// DELETE leaves a delete marker that hides the object, a PUT over a locked
// object leaves an unlocked version on top of it. For every file a point
// needs, Recover removes the delete markers and unlocked versions above
// the newest version that is still there underneath, which makes it
// current again. It needs only the backend (no password: the config and
// key files may be among what was hidden). Holdfast itself never leaves
// such layers in a repository with Object Lock: it removes every version
// of what it deletes.
func Recover(ctx context.Context, be storage.Backend, dryRun bool) (RecoverResult, error) {
	res := RecoverResult{DryRun: dryRun, Points: []string{}, Files: map[string]int{}}
	lk, ok := storage.AsLocker(be)
	if !ok {
		return res, fmt.Errorf("%s: %w: recover needs a versioned bucket", be.Location(), ErrNoObjectLock)
	}
	for _, dir := range recoverDirs {
		byName := map[string][]storage.Version{}
		var names []string
		err := lk.Versions(ctx, dir, func(v storage.Version) error {
			if _, ok := byName[v.Name]; !ok {
				names = append(names, v.Name)
			}
			byName[v.Name] = append(byName[v.Name], v)
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("recover: list versions of %s: %w", dir, err)
		}
		sort.Strings(names)
		for _, name := range names {
			back, err := recoverFile(ctx, lk, name, byName[name], dryRun, &res)
			if err != nil {
				return res, fmt.Errorf("recover %s: %w", name, err)
			}
			if back {
				res.Files[dir]++
				if id, ok := strings.CutPrefix(name, "points/"); ok {
					res.Points = append(res.Points, id)
				}
			}
		}
	}
	return res, nil
}

// recoverFile peels the layers above a file's newest kept version. vs is
// in the store's listing order: newest first.
func recoverFile(ctx context.Context, lk storage.Locker, name string, vs []storage.Version, dryRun bool, res *RecoverResult) (bool, error) {
	var peel []storage.Version
	found := false
	for i, v := range vs {
		if v.DeleteMarker {
			peel = append(peel, v)
			continue
		}
		if i == len(vs)-1 {
			found = true // the oldest version: nothing under it to prefer
			break
		}
		ret, err := lk.VersionRetention(ctx, name, v.VersionID)
		if err != nil {
			return false, err
		}
		if !ret.Until.IsZero() || !lockedBelow(ctx, lk, name, vs[i+1:]) {
			found = true
			break
		}
		peel = append(peel, v) // an unlocked version written over a locked one
	}
	if !found || len(peel) == 0 {
		return false, nil
	}
	for _, v := range peel {
		if v.DeleteMarker {
			res.DeleteMarkers++
		} else {
			res.Overwrites++
		}
		if dryRun {
			continue
		}
		if err := lk.RemoveVersion(ctx, name, v.VersionID); err != nil {
			return false, err
		}
	}
	return true, nil
}

// lockedBelow reports whether one of the older versions vs has a retention.
func lockedBelow(ctx context.Context, lk storage.Locker, name string, vs []storage.Version) bool {
	for _, v := range vs {
		if v.DeleteMarker {
			continue
		}
		if ret, err := lk.VersionRetention(ctx, name, v.VersionID); err == nil && !ret.Until.IsZero() {
			return true
		}
	}
	return false
}
