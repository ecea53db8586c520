package repo

import (
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

func TestGCCandidateKeepsName(t *testing.T) {
	id := idOf(0x5c, 77)
	for _, name := range []string{
		chunkName(id),
		chunkName(id) + ".gc",
		"chunks/00/" + id.String(), // an ID in the wrong directory
		"chunks/5c/not-an-id.gc",   // left by something else
		"chunks/" + id.String(),    // no shard directory
		chunkName(id) + ".gc.gc",   // not one of ours either
	} {
		c := newCandidate(storage.FileInfo{Name: name, Size: 42})
		if fi := c.info(); fi.Name != name || fi.Size != 42 {
			t.Errorf("candidate %q gives back %q, %d bytes", name, fi.Name, fi.Size)
		}
	}
	if c := newCandidate(storage.FileInfo{Name: chunkName(id) + ".gc"}); c.name != "" {
		t.Error("a canonical name is kept as a string, not rebuilt from the ID")
	}
}
