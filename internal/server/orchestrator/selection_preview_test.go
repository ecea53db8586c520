package orchestrator

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestSourceVMs lists what a selection picks now, as a session would,
// with the warning of an empty pick and the error of an unknown source.
func TestSourceVMs(t *testing.T) {
	or, store := newTestOrchestrator(t, newFakeClock(time.Now()))
	ctx := context.Background()
	dir := t.TempDir()
	for _, f := range []string{"web-1.img", "web-2-disk0.img", "web-2-disk1.img", "db.raw"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.CreateSource(ctx, configdb.Source{Name: "images", Kind: "image",
		Definition: json.RawMessage(`{"address":"` + dir + `"}`)}); err != nil {
		t.Fatal(err)
	}
	vms, warnings, err := or.SourceVMs(ctx, jobdef.Selection{Source: "images", Pattern: "web-*"})
	want := []jobdef.VM{{Name: "web-1", Disks: []string{dir + "/web-1.img"}},
		{Name: "web-2", Disks: []string{dir + "/web-2-disk0.img", dir + "/web-2-disk1.img"}}}
	if err != nil || len(warnings) != 0 || !reflect.DeepEqual(vms, want) {
		t.Fatalf("web-*: %+v %v %v", vms, warnings, err)
	}
	if vms, _, err := or.SourceVMs(ctx, jobdef.Selection{Source: "images"}); err != nil || len(vms) != 3 {
		t.Fatalf("all: %+v %v", vms, err)
	}
	if vms, warnings, err := or.SourceVMs(ctx, jobdef.Selection{Source: "images", Pattern: "mail*"}); err != nil || len(vms) != 0 || len(warnings) != 1 {
		t.Fatalf("mail*: %+v %v %v", vms, warnings, err)
	}
	if _, _, err := or.SourceVMs(ctx, jobdef.Selection{Source: "nope"}); err == nil {
		t.Fatal("an unknown source listed")
	}
}
