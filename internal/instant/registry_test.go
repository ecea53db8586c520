package instant

import (
	"errors"
	"github.com/holdfast-backup/holdfast/internal/vmx"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions")}
	if recs, err := reg.List(); err != nil || len(recs) != 0 {
		t.Fatalf("empty registry: %v %v", recs, err)
	}
	a := Record{ID: NewID(), Point: "p1", PID: os.Getpid(), Started: time.Now().Add(-time.Minute)}
	b := Record{ID: NewID(), Point: "p2", PID: 0, Started: time.Now(), Stopped: time.Now()}
	c := Record{ID: NewID(), Point: "p3", PID: 1 << 30, Started: time.Now().Add(time.Minute)} // no such process
	for _, r := range []Record{b, a, c} {
		if err := reg.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := reg.List()
	if err != nil || len(recs) != 3 {
		t.Fatalf("list: %v %v", recs, err)
	}
	want := []struct{ id, state string }{{a.ID, "serving"}, {b.ID, "stopped"}, {c.ID, "lost"}}
	for i, w := range want {
		if recs[i].ID != w.id || recs[i].State() != w.state {
			t.Errorf("record %d: %s %s, want %s %s", i, recs[i].ID, recs[i].State(), w.id, w.state)
		}
	}
	for _, id := range []string{"ir-00000000", "nope", "../etc/passwd", "ir-1234567"} {
		if _, err := reg.Load(id); !errors.Is(err, ErrNoSession) {
			t.Errorf("Load(%q): %v", id, err)
		}
	}
	if err := reg.Remove(b.ID); err != nil {
		t.Fatal(err)
	}
	if err := reg.Remove(b.ID); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if !ValidID(NewID()) || ValidID("ir-XYZ") {
		t.Error("ValidID")
	}
}

func TestVMDKDescriptor(t *testing.T) {
	d := vmx.Descriptor("disk-0.img", 1<<30, "monolithicFlat", "lsilogic", vmx.DefaultHWVersion)
	for _, want := range []string{`createType="monolithicFlat"`, `RW 2097152 FLAT "disk-0.img" 0`, `ddb.geometry.heads = "255"`} {
		if !strings.Contains(d, want) {
			t.Errorf("descriptor lacks %q:\n%s", want, d)
		}
	}
}

func TestVMOptionsFromPoint(t *testing.T) {
	notes := map[string]string{"vm_memory_mib": "2048", "vm_cpus": "4", "vm_nics": "virtio-net-pci,e1000"}
	var o VMOptions
	o.FromPoint(notes)
	if o.Memory != 2048 || o.CPUs != 4 || len(o.NICs) != 2 || o.NICs[1] != "e1000" {
		t.Errorf("from the point: %+v", o)
	}
	given := VMOptions{Memory: 512, CPUs: 2, NICs: []string{}}
	given.FromPoint(notes)
	if given.Memory != 512 || given.CPUs != 2 || len(given.NICs) != 0 {
		t.Errorf("flags given win: %+v", given)
	}
	var none VMOptions
	none.FromPoint(nil)
	if none.Memory != 0 || none.CPUs != 0 || none.NICs != nil {
		t.Errorf("nothing recorded: %+v", none)
	}
}
