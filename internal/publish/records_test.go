package publish

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/repo"
)

func TestCleanupUndoesDeadSessionsOnly(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	recs := Records{Dir: t.TempDir()}
	dir := t.TempDir()
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "not-ours")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	// A killed process: its loop step was recorded but not marked done
	// (killed right after losetup), and a mount is done.
	file := filepath.Join(dir, "disk0.img")
	f.loops["/dev/loop3"] = file
	f.loops["/dev/loop4"] = "/somebody/else.img"
	f.mounted[mp], f.sources[mp] = true, "/dev/loop3p1"
	dead := &Session{ID: "pub-0000dead", PID: 1 << 30, Steps: []Step{
		{Kind: stepDir, Path: mp, Done: true},
		{Kind: stepLoop, Path: file},
		{Kind: stepPartitions, Path: file, Device: "/dev/loop3", Done: true},
		{Kind: stepMount, Path: mp, Device: "/dev/loop3p1", Done: true},
	}}
	start, err := instant.ProcStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	live := &Session{ID: "pub-0000a1fe", PID: os.Getpid(), PIDStart: start, Steps: []Step{{Kind: stepDir, Path: other, Done: true}}}
	for _, s := range []*Session{dead, live} {
		if err := recs.Save(s); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Cleanup(ctx, Env{Records: recs, System: f})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"pub-0000dead: mount " + mp, "pub-0000dead: partition devices of /dev/loop3",
		"pub-0000dead: loop device /dev/loop3", "pub-0000dead: directory " + mp, "pub-0000dead: record"}
	if !slices.Equal(removed, want) {
		t.Errorf("removed:\n%s", strings.Join(removed, "\n"))
	}
	if _, ok := f.loops["/dev/loop4"]; !ok || len(f.loops) != 1 {
		t.Errorf("loops: %v (only somebody else's must be left)", f.loops)
	}
	if _, err := recs.Load(dead.ID); !errors.Is(err, ErrNoSession) {
		t.Errorf("dead record: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("the live session's directory: %v", err)
	}
	if s, err := recs.Load(live.ID); err != nil || s.State() != "publishing" {
		t.Errorf("live record: %+v %v", s, err)
	}
}

func TestUnpublishCleansUpAfterADeadProcess(t *testing.T) {
	f := newFake()
	recs := Records{Dir: t.TempDir()}
	mdir := filepath.Join(t.TempDir(), "m")
	s := &Session{ID: "pub-12345678", PID: 1 << 30, MountDir: mdir, Ready: true,
		Steps: []Step{{Kind: stepFUSE, Path: "/x/disks", Done: true}}}
	f.mounted["/x/disks"], f.sources["/x/disks"] = true, "holdfast-pub-12345678"
	if err := recs.Save(s); err != nil {
		t.Fatal(err)
	}
	if got, _ := recs.Load(s.ID); got.State() != "lost" {
		t.Errorf("state %q, want lost", got.State())
	}
	for _, ref := range []string{"pub-99999999", "/nowhere"} {
		if _, err := Unpublish(context.Background(), Env{Records: recs, System: f}, ref); !errors.Is(err, ErrNoSession) {
			t.Errorf("unpublish %s: %v", ref, err)
		}
	}
	removed, err := Unpublish(context.Background(), Env{Records: recs, System: f}, mdir) // by its mount directory
	if err != nil || !slices.Equal(removed, []string{"FUSE mount /x/disks"}) || f.mounted["/x/disks"] {
		t.Fatalf("unpublish: %q %v", removed, err)
	}
	if _, err := recs.Load(s.ID); !errors.Is(err, ErrNoSession) {
		t.Errorf("record left: %v", err)
	}
}

func TestRecords(t *testing.T) {
	recs := Records{Dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(recs.Dir, "pub-00000001.json"), []byte("{bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(recs.Dir, "pub-00000002.json"), []byte(`{"id":"pub-00000003"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"pub-00000001", "pub-00000002", "../etc/passwd", "ir-12345678"} {
		if _, err := recs.Load(id); err == nil {
			t.Errorf("load %q: no error", id)
		}
	}
	if all, err := recs.List(); err != nil || len(all) != 0 {
		t.Errorf("list: %v %v", all, err)
	}
	if ValidID("pub-1234567") || ValidID("pub-1234567G") || !ValidID(NewID()) {
		t.Error("ValidID")
	}
}

func TestMountsIn(t *testing.T) {
	info := []byte("36 35 98:0 / /mnt/with\\040space rw - ext4 /dev/x rw\n37 35 98:1 / /mnt/plain rw shared:5 - ext4 /dev/y rw\n" +
		"38 37 0:52 / /mnt/plain rw,nosuid - fuse.holdfast holdfast-pub-00000001 rw\n")
	for path, want := range map[string][]Mount{
		"/mnt/with space":     {{Dev: "98:0", FSType: "ext4", Source: "/dev/x"}},
		"/mnt/plain":          {{Dev: "98:1", FSType: "ext4", Source: "/dev/y"}, {Dev: "0:52", FSType: "fuse.holdfast", Source: "holdfast-pub-00000001"}},
		"/mnt":                nil,
		"/mnt/with\\040space": nil,
	} {
		if got := mountsIn(info, path); !slices.Equal(got, want) {
			t.Errorf("%q: %+v", path, got)
		}
	}
}

func TestParsers(t *testing.T) {
	p := parseBlkid([]byte("DEVNAME=/dev/loop0\nPTUUID=x\nPTTYPE=gpt\n"))
	if p.pttype != "gpt" || p.fstype != "" {
		t.Errorf("blkid: %+v", p)
	}
	parts, err := parsePartx([]byte("1 2048\n2 4096\n"))
	if err != nil || len(parts) != 2 || parts[1] != (partition{2, 4096}) {
		t.Errorf("partx: %v %v", parts, err)
	}
	for _, bad := range []string{"1", "x 1", "1 -5", "0 10", "1 2 3"} {
		if _, err := parsePartx([]byte(bad)); err == nil {
			t.Errorf("partx %q: no error", bad)
		}
	}
	if lvs := parseLVs([]byte("  root 1048576\n  bad/name 1\n  x y\n")); len(lvs) != 1 || lvs[0] != (lvInfo{"root", 1 << 20}) {
		t.Errorf("lvs: %v", lvs)
	}
	if !clashes([]string{"my--vg-root"}, "my-vg") || clashes([]string{"my--vg-root"}, "my") || clashes([]string{"vg0--x-y"}, "vg0") {
		t.Error("clashes")
	}
	for in, want := range map[string]string{"vm1": "vm1", "a/b": "a_b", "..": "_..", "": "_"} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q", in, got)
		}
	}
}

func FuzzParsers(f *testing.F) {
	for _, s := range []string{"TYPE=ext4\nPTTYPE=gpt\n", "1 2048\n2 4096\n", "  root 1048576\n", "/dev/x vg0\n", "a\\040b \\777", "1 2 3:4 / /x rw - ext4 /dev/y rw\n1 2 3:4 / /x rw -\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseBlkid(b)
		_, _ = parsePartx(b)
		_ = parseLVs(b)
		_ = parsePVs(b)
		_ = mountsIn(b, "/x")
		_ = unescapeMount(string(b))
		_ = safeName(string(b))
	})
}

func TestServerID(t *testing.T) {
	if id := ServerID(42); id != "pub-00000042" || !ValidID(id) {
		t.Errorf("ServerID(42) = %q", id)
	}
	for in, want := range map[string]int64{"pub-00000042": 42, "42": 42, "pub-0000004a": 0, "pub-42": 0, "0": 0, "ir-00000042": 0} {
		if n, ok := ParseServerID(in); n != want || ok != (want > 0) {
			t.Errorf("ParseServerID(%q) = %d %v", in, n, ok)
		}
	}
}

// fakeHolder records holds.
type fakeHolder struct{ held map[string]bool }

func (h *fakeHolder) HoldPoint(_ context.Context, hold repo.Hold) error {
	h.held[hold.Point+"/"+hold.Holder] = true
	return nil
}

func (h *fakeHolder) ReleaseHold(_ context.Context, point, holder string) error {
	delete(h.held, point+"/"+holder)
	return nil
}

func TestHoldReleasedOnUndo(t *testing.T) {
	ctx := context.Background()
	recs := Records{Dir: t.TempDir()}
	for _, withHolder := range []bool{true, false} {
		h := &fakeHolder{held: map[string]bool{"p1/pub-0000000a": true}}
		s := &Session{ID: "pub-0000000a", PID: 1 << 30, Steps: []Step{{Kind: stepHold, Path: "p1", Done: true}}}
		if err := recs.Save(s); err != nil {
			t.Fatal(err)
		}
		e := Env{Records: recs, System: newFake()}
		if withHolder {
			e.Holder = h
		}
		removed, err := Cleanup(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if withHolder && (len(h.held) != 0 || removed[0] != "pub-0000000a: hold on point p1") {
			t.Errorf("with a holder: held %v, removed %q", h.held, removed)
		}
		if !withHolder && (len(h.held) != 1 || len(removed) != 1) { // only the record
			t.Errorf("without a holder: held %v, removed %q", h.held, removed)
		}
	}
}

// Cleanup unmounts only what the session mounted: the recorded device
// (by number) or its FUSE server. Another filesystem mounted at a
// recorded mountpoint is left alone and reported; one mounted on top of
// the session's stops the clean-up.
func TestCleanupLeavesMountsNotOurs(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		setup   func(f *fakeSys, mp, disks string)
		err     error
		warning string
		umounts int
	}{
		{"another device at the mountpoint", func(f *fakeSys, mp, disks string) {
			f.mounted[mp], f.sources[mp] = true, "/dev/sdz1"
			f.mounted[disks], f.sources[disks] = true, "holdfast-pub-0000dead"
		}, nil, "left /dev/sdz1", 1},
		{"the recorded name is another device now", func(f *fakeSys, mp, disks string) {
			f.over[mp] = []Mount{{Dev: "259:1", FSType: "ext4", Source: "/dev/loop3p1"}}
			f.devnums["/dev/loop3p1"] = "259:9"
		}, nil, "left /dev/loop3p1", 0},
		{"btrfs (an anonymous device number): by its source", func(f *fakeSys, mp, disks string) {
			f.over[mp] = []Mount{{Dev: "0:41", FSType: "btrfs", Source: "/dev/loop3p1"}}
		}, nil, "", 1},
		{"another FUSE server", func(f *fakeSys, mp, disks string) {
			f.mounted[disks], f.sources[disks] = true, "holdfast-pub-00000bad"
		}, nil, "left holdfast-pub-00000bad", 0},
		{"mounted over ours", func(f *fakeSys, mp, disks string) {
			f.mounted[mp], f.sources[mp] = true, "/dev/loop3p1"
			f.over[mp] = []Mount{{Dev: "8:1", FSType: "ext4", Source: "/dev/sdz1"}}
		}, ErrNotOurs, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			recs := Records{Dir: t.TempDir()}
			dir := t.TempDir()
			mp, disks, file := filepath.Join(dir, "mnt"), filepath.Join(dir, "disks"), filepath.Join(dir, "disks", "disk0.img")
			f.loops["/dev/loop3"] = file
			tc.setup(f, mp, disks)
			dead := &Session{ID: "pub-0000dead", PID: 1 << 30, Steps: []Step{
				{Kind: stepFUSE, Path: disks, Done: true},
				{Kind: stepLoop, Path: file, Device: "/dev/loop3", Done: true},
				{Kind: stepMount, Path: mp, Device: "/dev/loop3p1", Done: true},
			}}
			if err := recs.Save(dead); err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			_, err := Cleanup(ctx, Env{Records: recs, System: f, Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if !errors.Is(err, tc.err) {
				t.Fatalf("cleanup: %v, want %v", err, tc.err)
			}
			if got := f.ran("umount"); len(got) != tc.umounts {
				t.Errorf("unmounted %q", got)
			}
			if !strings.Contains(log.String(), tc.warning) {
				t.Errorf("log %q, want %q", log.String(), tc.warning)
			}
			if tc.err == nil && len(f.loops) != 0 {
				t.Errorf("the session's loop device is left: %v", f.loops)
			}
		})
	}
}

// A record whose process cannot be told apart from a later one with its
// PID (no start time, or another start time) is the record of a dead
// session: Unpublish sends no signal (here the PID is this test's
// process) and cleans up from the record.
func TestUnpublishNeverSignalsAnUnprovenProcess(t *testing.T) {
	start, err := instant.ProcStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	defer signal.Stop(term)
	for _, pidStart := range []uint64{0, start + 1} {
		f := newFake()
		recs := Records{Dir: t.TempDir()}
		s := &Session{ID: "pub-0000beef", PID: os.Getpid(), PIDStart: pidStart, Ready: true,
			Steps: []Step{{Kind: stepFUSE, Path: "/x/disks", Done: true}}}
		f.mounted["/x/disks"], f.sources["/x/disks"] = true, "holdfast-pub-0000beef"
		if err := recs.Save(s); err != nil {
			t.Fatal(err)
		}
		if got, _ := recs.Load(s.ID); got.State() != "lost" {
			t.Errorf("start %d: state %q, want lost", pidStart, got.State())
		}
		env := Env{Records: recs, System: f, Clock: clock.NewFake(time.Unix(1e9, 0))}
		removed, err := Unpublish(context.Background(), env, s.ID)
		if err != nil || !slices.Equal(removed, []string{"FUSE mount /x/disks"}) {
			t.Errorf("start %d: unpublish: %q %v", pidStart, removed, err)
		}
		select {
		case <-term:
			t.Fatalf("start %d: this process got SIGTERM", pidStart)
		default:
		}
	}
}
