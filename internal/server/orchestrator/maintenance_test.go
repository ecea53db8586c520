package orchestrator

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestReadDataRotation: each maintenance run reads the part after the one
// the job's last run read (every chunk over ReadDataOf runs); runs that
// read nothing do not move the rotation.
func TestReadDataRotation(t *testing.T) {
	or, store := newTestOrchestrator(t, newFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)))
	ctx := context.Background()
	if _, err := store.CreateJob(ctx, configdb.Job{Name: "maint", Kind: jobdef.KindMaintenance,
		Definition: json.RawMessage(`{"repository":"r","maintenance":{"verify":true,"read_data_percent":25}}`)}); err != nil {
		t.Fatal(err)
	}
	rs := &runSession{job: "maint"}
	var seen []int
	for run := range 6 {
		se, err := store.CreateSession(ctx, "maint", jobdef.KindMaintenance)
		if err != nil {
			t.Fatal(err)
		}
		rs.id = se.ID
		part := or.nextReadDataPart(ctx, rs, 4)
		seen = append(seen, part)
		res := MaintenanceResult{ReadDataPart: part + 1, ReadDataOf: 4}
		if run == 2 {
			res = MaintenanceResult{Error: "agent unreachable"} // read nothing
		}
		b, _ := json.Marshal(res)
		if _, err := store.UpdateSession(ctx, se.ID, configdb.StateSuccess, b); err != nil {
			t.Fatal(err)
		}
	}
	want := []int{0, 1, 2, 2, 3, 0}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("parts read %v, want %v", seen, want)
		}
	}
}

// TestStartMaintenanceRefusesInvalid: a maintenance job that asks for no
// work, or names an unregistered repository, does not start.
func TestStartMaintenanceRefusesInvalid(t *testing.T) {
	or, store := newTestOrchestrator(t, newFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)))
	ctx := context.Background()
	for _, def := range []string{
		`{"repository":"r","maintenance":{}}`,
		`{"repository":"nowhere","password_secret":"pw","maintenance":{"gc":true}}`,
	} {
		j, err := store.CreateJob(ctx, configdb.Job{Name: "m", Kind: jobdef.KindMaintenance, Definition: json.RawMessage(def)})
		if err != nil {
			t.Fatal(err)
		}
		se, _ := store.CreateSession(ctx, "m", jobdef.KindMaintenance)
		if err := or.Start(ctx, se, j); err == nil {
			t.Errorf("%s: started", def)
		}
		if err := store.DeleteJob(ctx, "m"); err != nil {
			t.Fatal(err)
		}
	}
}
