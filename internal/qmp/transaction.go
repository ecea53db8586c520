package qmp

import "context"

// Action is one action of a transaction: Type is the command name
// ("block-dirty-bitmap-add", "blockdev-backup", ...) and Data its arguments.
type Action struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

// Transaction runs actions atomically: either all take effect, at one
// point in time with respect to guest I/O, or none does (the error names
// the failing action's problem).
func (c *Client) Transaction(ctx context.Context, actions []Action) error {
	return c.Execute(ctx, "transaction", map[string]any{"actions": actions}, nil)
}

// BitmapAdd are the arguments of block-dirty-bitmap-add.
type BitmapAdd struct {
	Node        string `json:"node"`
	Name        string `json:"name"`
	Granularity int64  `json:"granularity,omitempty"`
	Persistent  bool   `json:"persistent,omitempty"`
	Disabled    bool   `json:"disabled,omitempty"`
}

// BitmapMerge are the arguments of block-dirty-bitmap-merge: the bitmaps
// (of the same node) are OR-ed into target.
type BitmapMerge struct {
	Node    string   `json:"node"`
	Target  string   `json:"target"`
	Bitmaps []string `json:"bitmaps"`
}

// Bitmap names a bitmap: the arguments of block-dirty-bitmap-clear,
// -remove, -enable and -disable.
type Bitmap struct {
	Node string `json:"node"`
	Name string `json:"name"`
}

// BlockdevBackup are the arguments of blockdev-backup. Sync "none" with a
// target whose backing node is Device is the fleecing (point-in-time
// snapshot) setup: the job copies old data to the target before the guest
// overwrites it.
type BlockdevBackup struct {
	JobID        string `json:"job-id,omitempty"`
	Device       string `json:"device"`
	Target       string `json:"target"`
	Sync         string `json:"sync"` // "none", "full", "top", "incremental", "bitmap"
	Bitmap       string `json:"bitmap,omitempty"`
	AutoFinalize *bool  `json:"auto-finalize,omitempty"`
	AutoDismiss  *bool  `json:"auto-dismiss,omitempty"`
}

// AddBitmap is a transaction action adding a dirty bitmap.
func AddBitmap(a BitmapAdd) Action { return Action{"block-dirty-bitmap-add", a} }

// MergeBitmaps is a transaction action merging bitmaps into a target.
func MergeBitmaps(m BitmapMerge) Action { return Action{"block-dirty-bitmap-merge", m} }

// ClearBitmap is a transaction action clearing a bitmap.
func ClearBitmap(node, name string) Action {
	return Action{"block-dirty-bitmap-clear", Bitmap{node, name}}
}

// Backup is a transaction action starting a blockdev-backup job.
func Backup(b BlockdevBackup) Action { return Action{"blockdev-backup", b} }
