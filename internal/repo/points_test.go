package repo

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCommitPointRejectsInvalid: CommitPoint must not write a manifest
// that LoadManifest would reject (it would hide the point, or break
// listing every point) or whose name leaves points/.
func TestCommitPointRejectsInvalid(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t, false)
	good := commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, nil})
	valid := func() *Manifest {
		return &Manifest{ID: r.NewPointID(), VM: "vm", Time: time.Now(),
			Disks: []DiskManifest{{Index: 0, Size: 1, ChunkSize: MinChunkSize}}}
	}
	tests := map[string]func(m *Manifest){
		"path id":         func(m *Manifest) { m.ID = "../config" },
		"empty id":        func(m *Manifest) { m.ID = "" },
		"short id":        func(m *Manifest) { m.ID = "abc" },
		"bad vm":          func(m *Manifest) { m.VM = "a/b" },
		"disk numbering":  func(m *Manifest) { m.Disks[0].Index = 1 },
		"chunk size":      func(m *Manifest) { m.Disks[0].ChunkSize = 1000 },
		"negative size":   func(m *Manifest) { m.Disks[0].Size = -1 },
		"negative chunks": func(m *Manifest) { m.Disks[0].Chunks = -1 },
	}
	for name, mod := range tests {
		m := valid()
		mod(m)
		if err := r.CommitPoint(ctx, m); err == nil {
			t.Errorf("%s: committed", name)
		} else if errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v claims stored data is corrupt", name, err)
		}
	}
	if n := countFiles(t, be, "points"); n != 1 {
		t.Errorf("%d manifests stored, want 1", n)
	}
	if _, err := Open(ctx, be, nil, Options{}); err != nil {
		t.Fatalf("repository no longer opens: %v", err)
	}
	ms, err := r.ListPoints(ctx)
	if err != nil || len(ms) != 1 || ms[0].ID != good.ID {
		t.Fatalf("points after refused commits: %v, %v", ms, err)
	}
	if err := r.CommitPoint(ctx, valid()); err != nil {
		t.Errorf("valid manifest: %v", err)
	}
}
