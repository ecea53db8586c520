package qemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/qmp"
)

// bitmapPlan is what a session does with one disk's bitmaps.
type bitmapPlan struct {
	Base   string // frozen bitmap covering the changes since the previous point ("" = none)
	Reason string // why there is no base
	New    string // bitmap created now; the point's change ID
	Stale  []string
}

func newGeneration(tag string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "hf-" + tag + "-" + hex.EncodeToString(b)
}

// planBitmaps decides, from the node's bitmaps and the previous point's
// change ID, which bitmap is the base and which of ours are leftovers.
func planBitmaps(tag string, have []qmp.DirtyBitmap, prev string) bitmapPlan {
	p := bitmapPlan{New: newGeneration(tag)}
	prefix := "hf-" + tag + "-"
	found := false
	for _, b := range have {
		if !strings.HasPrefix(b.Name, prefix) {
			continue
		}
		if b.Name == prev && !b.Inconsistent {
			p.Base, found = b.Name, true
			continue
		}
		if b.Name == prev && b.Inconsistent {
			p.Reason = fmt.Sprintf("dirty bitmap %s is inconsistent (QEMU stopped without saving it, e.g. after a crash)", prev)
		}
		p.Stale = append(p.Stale, b.Name)
	}
	switch {
	case found:
	case prev == "":
		p.Reason = "no previous restore point of this disk"
	case p.Reason == "":
		p.Reason = fmt.Sprintf("dirty bitmap %s of the previous restore point is gone (QEMU restarted, disk replaced, or bitmap removed)", prev)
	}
	return p
}

// settleStale folds leftover bitmaps of killed runs into the base (they
// hold changes made after it was frozen) or drops them when there is no
// base, so the node keeps one Holdfast bitmap.
func settleStale(ctx context.Context, c *qmp.Client, node string, p bitmapPlan) error {
	if p.Base != "" && len(p.Stale) > 0 {
		if err := c.Execute(ctx, "block-dirty-bitmap-merge",
			qmp.BitmapMerge{Node: node, Target: p.Base, Bitmaps: p.Stale}, nil); err != nil {
			return fmt.Errorf("merge leftover bitmaps into %s: %w", p.Base, err)
		}
	}
	for _, b := range p.Stale {
		if err := removeBitmap(ctx, c, node, b); err != nil {
			return err
		}
	}
	return nil
}

func removeBitmap(ctx context.Context, c *qmp.Client, node, name string) error {
	err := c.Execute(ctx, "block-dirty-bitmap-remove", qmp.Bitmap{Node: node, Name: name}, nil)
	if err != nil {
		return fmt.Errorf("remove bitmap %s: %w", name, err)
	}
	return nil
}

// bitmapActions are one disk's part of the snapshot transaction.
func bitmapActions(d vmDisk, p bitmapPlan) []qmp.Action {
	acts := []qmp.Action{qmp.AddBitmap(qmp.BitmapAdd{Node: d.Node, Name: p.New, Persistent: d.Format == "qcow2"})}
	if p.Base != "" {
		acts = append(acts, qmp.Action{Type: "block-dirty-bitmap-disable", Data: qmp.Bitmap{Node: d.Node, Name: p.Base}})
	}
	return acts
}

// finishBitmaps runs after the exports are gone: on success the base is
// dropped (the new bitmap now tracks changes since this point); on failure
// the new bitmap is merged back into the re-enabled base.
func finishBitmaps(ctx context.Context, c *qmp.Client, node string, p bitmapPlan, committed bool) error {
	if committed {
		if p.Base == "" {
			return nil
		}
		return removeBitmap(ctx, c, node, p.Base)
	}
	if p.Base != "" {
		if err := c.Execute(ctx, "block-dirty-bitmap-merge",
			qmp.BitmapMerge{Node: node, Target: p.Base, Bitmaps: []string{p.New}}, nil); err != nil {
			return fmt.Errorf("merge %s back into %s: %w", p.New, p.Base, err)
		}
		if err := c.Execute(ctx, "block-dirty-bitmap-enable", qmp.Bitmap{Node: node, Name: p.Base}, nil); err != nil {
			return fmt.Errorf("re-enable %s: %w", p.Base, err)
		}
	}
	return removeBitmap(ctx, c, node, p.New)
}
