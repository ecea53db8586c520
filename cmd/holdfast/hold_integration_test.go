package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// TestInstantRecoveryHoldsPoint: while an instant recovery session serves
// a point — and while it is stopped but can be restarted — forget keeps the
// point (saying why) and gc its chunks: the whole disk still reads through
// the NBD export, also after the serving process restarted. Once the
// session is discarded, forget and gc remove it.
func TestInstantRecoveryHoldsPoint(t *testing.T) {
	needTools(t, "nbdcopy")
	e := newEnv(t)
	e.vars = append(e.vars, "HOLDFAST_STATE_DIR="+filepath.Join(e.dir, "state"))
	e.init("--chunk-size", "256KiB")
	img, first := filepath.Join(e.dir, "vm.img"), filepath.Join(e.dir, "first.img")
	writeImage(t, first, 4<<20, map[int64][]byte{0: randomBytes(1 << 20), 2 << 20: randomBytes(1 << 20)})
	p1 := e.backupJSON("vm1", first).Point
	writeImage(t, img, 4<<20, map[int64][]byte{0: randomBytes(4 << 20)})
	e.backupJSON("vm1", img)

	addr := freeAddr(t)
	rec := startInstant(t, e, p1, "--nbd", addr)
	readAll := func(url string) {
		t.Helper()
		got := filepath.Join(e.dir, "exported.img")
		os.Remove(got)
		sh(t, "nbdcopy", url, got)
		sameFile(t, first, got)
	}
	collect := func(stage string) {
		t.Helper()
		out := e.ok("forget", "--keep-last", "1")
		if !strings.Contains(out, "keep   "+p1) || !strings.Contains(out, "held by "+rec.ID) {
			t.Fatalf("%s: forget does not report the held point:\n%s", stage, out)
		}
		var res map[string]any
		_ = json.Unmarshal([]byte(e.ok("gc", "--json", "--grace", "0s")), &res)
		if res["removed_chunks"].(float64) != 0 {
			t.Fatalf("%s: gc removed chunks: %v", stage, res)
		}
	}
	collect("serving")
	readAll(rec.Disks[0].NBDURL)

	// Stopped (restartable) the session keeps its hold; restarted, it
	// serves the whole point.
	e.ok("instant-recovery", "stop", rec.ID)
	var hs []repo.Hold
	if err := json.Unmarshal([]byte(e.ok("holds", "list", "--json")), &hs); err != nil || len(hs) != 1 ||
		hs[0].Point != p1 || hs[0].Holder != rec.ID {
		t.Fatalf("holds after stop: %+v %v", hs, err)
	}
	collect("stopped")
	rec2 := startInstant(t, e, p1, "--nbd", addr, "--redo-dir", rec.RedoDir)
	if rec2.ID != rec.ID {
		t.Fatalf("restart made session %s, want %s", rec2.ID, rec.ID)
	}
	collect("restarted")
	readAll(rec2.Disks[0].NBDURL)

	// Discarded, the hold goes and so does the point.
	e.ok("instant-recovery", "stop", rec.ID, "--discard")
	if out := e.ok("holds", "list"); strings.Contains(out, p1) {
		t.Fatalf("hold left after discard:\n%s", out)
	}
	if out := e.ok("forget", "--keep-last", "1"); !strings.Contains(out, "remove "+p1) {
		t.Fatalf("forget after discard:\n%s", out)
	}
	var res map[string]any
	_ = json.Unmarshal([]byte(e.ok("gc", "--json", "--grace", "0s")), &res)
	if res["removed_chunks"].(float64) != 8 {
		t.Fatalf("gc after discard removed %v chunks, want the 8 of the point", res["removed_chunks"])
	}
}

// TestHoldsRelease: a stale hold is released by hand, by point prefix and
// holder, without the password.
func TestHoldsRelease(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	img := filepath.Join(e.dir, "vm.img")
	writeImage(t, img, 1<<20, map[int64][]byte{0: randomBytes(1 << 20)})
	p := e.backupJSON("vm1", img).Point
	h, _ := json.Marshal(repo.Hold{Point: p, Holder: "ir-deadbeef", Who: "gone-host pid 1", Why: "instant recovery"})
	_ = os.MkdirAll(filepath.Join(e.repo, "holds", p), 0o700)
	_ = os.WriteFile(filepath.Join(e.repo, "holds", p, "ir-deadbeef"), h, 0o600)
	e.backupJSON("vm1", img)
	if out := e.ok("forget", "--keep-last", "1"); !strings.Contains(out, "keep   "+p) {
		t.Fatalf("forget removed a held point:\n%s", out)
	}
	noPassword := &env{t: t, dir: e.dir, repo: e.repo, vars: []string{"HOLDFAST_TEST_MAIN=1", "HOLDFAST_REPOSITORY=" + e.repo}}
	if r := noPassword.run("holds", "release", p[:6], "ir-0"); r.code == 0 {
		t.Fatalf("released a hold that is not there: %+v", r)
	}
	noPassword.ok("holds", "release", p[:6], "ir-deadbeef")
	if out := e.ok("forget", "--keep-last", "1"); !strings.Contains(out, "remove "+p) {
		t.Fatalf("forget after release:\n%s", out)
	}
}
