package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/publish"
	"github.com/holdfast-backup/holdfast/internal/testutil/guestimg"
)

// needPublishHost skips unless this host can publish (root, FUSE, the
// tools).
func needPublishHost(t *testing.T) { guestimg.NeedPublishHost(t) }

var (
	pubBoot = map[string][]byte{"vmlinuz": bytes.Repeat([]byte("kernel"), 40000), "grub/grub.cfg": []byte("set default=0\n")}
	pubRoot = map[string][]byte{"etc/hostname": []byte("vm1\n"), "srv/data.bin": randomBytes(3 << 20)}
	pubData = map[string][]byte{"report.txt": []byte("figures\n")}
)

// publishEnv backs up a VM of two disks: a GPT with ext4, xfs and swap,
// and an MBR with ext4.
func publishEnv(t *testing.T) (*env, string) {
	t.Helper()
	needPublishHost(t)
	e := newEnv(t)
	e.init()
	gpt, mbr := filepath.Join(e.dir, "gpt.img"), filepath.Join(e.dir, "mbr.img")
	guestimg.Build(t, gpt, guestimg.Spec{Label: "gpt", Parts: []guestimg.Part{
		{FS: "ext4", SizeMiB: 16, Files: pubBoot}, {FS: "xfs", SizeMiB: 64, Files: pubRoot}, {FS: "swap", SizeMiB: 8}}})
	guestimg.Build(t, mbr, guestimg.Spec{Label: "dos", Parts: []guestimg.Part{{FS: "ext4", SizeMiB: 16, Files: pubData}}})
	e.backupJSON("vm1", gpt, mbr)
	state := filepath.Join(e.dir, "publish-state")
	t.Cleanup(func() { // whatever a failed test left
		e.run("publish", "cleanup", "--state-dir", state)
		recs := publish.Records{Dir: state}
		all, _ := recs.List()
		for _, s := range all {
			if instant.Alive(s.PID) {
				_ = syscall.Kill(s.PID, syscall.SIGKILL)
			}
		}
		e.run("publish", "cleanup", "--state-dir", state)
	})
	return e, state
}

func (e *env) publishJSON(state string, args ...string) *publish.Session {
	e.t.Helper()
	out := e.ok(append([]string{"publish", "vm1:latest", "--state-dir", state, "--json"}, args...)...)
	s := &publish.Session{}
	if err := json.Unmarshal([]byte(out), s); err != nil {
		e.t.Fatalf("publish --json: %v\n%s", err, out)
	}
	return s
}

// assertUnpublished checks that nothing of s is left on the host.
func assertUnpublished(t *testing.T, s *publish.Session, state string) {
	t.Helper()
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.MountDir + "/", filepath.Join(state, s.ID) + "/"} {
		if strings.Contains(string(info), " "+p) {
			t.Errorf("a mount under %s is left", p)
		}
	}
	for _, d := range s.Disks {
		if loops, _ := (publish.Host{}).LoopsOf(d.File); len(loops) > 0 {
			t.Errorf("loop devices of %s are left: %v", d.File, loops)
		}
		if back, _ := (publish.Host{}).LoopBacking(d.Loop); back == "" {
			if parts, _ := filepath.Glob(d.Loop + "p*"); len(parts) > 0 {
				t.Errorf("partition devices of detached %s are left: %v", d.Loop, parts)
			}
		}
	}
	if instant.Alive(s.PID) {
		t.Errorf("the publish process %d runs on", s.PID)
	}
	for _, p := range []string{s.MountDir, filepath.Join(state, s.ID), filepath.Join(state, s.ID+".json")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left (%v)", p, err)
		}
	}
}

func TestPublishUnpublish(t *testing.T) {
	e, state := publishEnv(t)
	mnt := filepath.Join(e.dir, "mnt")
	s := e.publishJSON(state, "--mount-dir", mnt)
	if !publish.ValidID(s.ID) || s.MountDir != mnt || len(s.Filesystems) != 4 || len(s.Problems) != 0 {
		t.Fatalf("session: %+v", s)
	}
	for i, files := range map[int]map[string][]byte{0: pubBoot, 1: pubRoot, 3: pubData} {
		f := s.Filesystems[i]
		if f.Mountpoint == "" || !strings.HasPrefix(f.Mountpoint, filepath.Join(mnt, "vm1")+"/") {
			t.Fatalf("filesystem %d: %+v", i, f)
		}
		for name, want := range files {
			got, err := os.ReadFile(filepath.Join(f.Mountpoint, name))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s/%s: %v (content equal: %v)", f.Mountpoint, name, err, bytes.Equal(got, want))
			}
		}
		if err := os.WriteFile(filepath.Join(f.Mountpoint, "new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("write into %s: %v, want EROFS", f.Mountpoint, err)
		}
	}
	if f := s.Filesystems[2]; f.FSType != "swap" || f.Mountpoint != "" {
		t.Errorf("swap: %+v", f)
	}
	for _, d := range s.Disks {
		out, err := exec.Command("blockdev", "--getro", d.Loop).Output()
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Errorf("blockdev --getro %s: %q %v", d.Loop, out, err)
		}
	}
	var rows []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(e.ok("publish", "list", "--state-dir", state, "--json")), &rows); err != nil ||
		len(rows) != 1 || rows[0].ID != s.ID || rows[0].State != "published" {
		t.Fatalf("list: %+v %v", rows, err)
	}
	if out := e.ok("unpublish", s.ID, "--state-dir", state); !strings.Contains(out, "unpublished "+s.ID) {
		t.Errorf("unpublish: %q", out)
	}
	assertUnpublished(t, s, state)
	if holds := e.ok("holds", "list"); strings.Contains(holds, s.ID) {
		t.Errorf("the hold stays after unpublish:\n%s", holds)
	}
	if _, err := os.Stat(s.Disks[0].File); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("disk file: %v", err)
	}
	if r := e.run("unpublish", s.ID, "--state-dir", state); r.code != exitFailure || !strings.Contains(r.stderr, "no such publish session") {
		t.Errorf("second unpublish: %+v", r)
	}
}

func TestPublishKilledThenCleanup(t *testing.T) {
	e, state := publishEnv(t)
	out := e.ok("publish", "vm1:latest", "--state-dir", state)
	// lsblk-like: the disks, their partitions under them, the mount points.
	for _, want := range []string{"NAME", "MOUNTPOINT", "disk", "├─loop", "└─loop", "part  xfs", "swap", "/vm1/disk0-p2"} {
		if !strings.Contains(out, want) {
			t.Errorf("publish output lacks %q:\n%s", want, out)
		}
	}
	all, err := (publish.Records{Dir: state}).List()
	if err != nil || len(all) != 1 {
		t.Fatalf("records: %v %v", all, err)
	}
	s := all[0]
	if !strings.HasPrefix(s.MountDir, os.TempDir()) || !strings.HasSuffix(s.MountDir, "holdfast.mount."+s.ID) {
		t.Errorf("default mount dir %s", s.MountDir)
	}
	if holds := e.ok("holds", "list"); !strings.Contains(holds, s.ID) {
		t.Errorf("the point is not held while published:\n%s", holds)
	}
	if err := syscall.Kill(s.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed publish process to end", func() bool { return !instant.Alive(s.PID) })
	if out := e.ok("publish", "list", "--state-dir", state); !strings.Contains(out, "lost") {
		t.Errorf("list after kill -9: %s", out)
	}
	r := e.run("publish", "cleanup", "--state-dir", state)
	out = r.stdout
	// No repository here: the hold on the point stays, and cleanup says how to release it.
	if hint := "holdfast holds release " + s.Point + " " + s.ID; r.code != 0 || !strings.Contains(r.stderr, hint) {
		t.Errorf("cleanup: exit %d, stderr %q lacks %q", r.code, r.stderr, hint)
	}
	for _, want := range []string{"removed " + s.ID + ": mount ", "loop device /dev/loop", "FUSE mount ", "partition devices of", "record"} {
		if !strings.Contains(out, want) {
			t.Errorf("cleanup output lacks %q:\n%s", want, out)
		}
	}
	assertUnpublished(t, s, state)
	if out := e.ok("publish", "cleanup", "--state-dir", state); !strings.Contains(out, "nothing to clean up") {
		t.Errorf("second cleanup: %s", out)
	}
}

func TestPublishNeedsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run holdfast as another user")
	}
	// A copy of the test binary in a directory the user may enter.
	dir, err := os.MkdirTemp("", "holdfast-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "holdfast")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"publish", "vm1:latest"}, {"unpublish", "pub-12345678"}, {"publish", "cleanup"}} {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Env = append(os.Environ(), "HOLDFAST_TEST_MAIN=1", "HOLDFAST_REPOSITORY="+dir, "HOLDFAST_PASSWORD=x")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFailure || !strings.Contains(errb.String(), "needs root") {
			t.Errorf("%v as nobody: %v %q", args, err, errb.String())
		}
	}
}

// A state directory others may write is refused before anything (the
// serving process's log) is made in it: the serving process never starts.
func TestPublishRefusesAStateDirOthersMayWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("publish needs root")
	}
	e := newEnv(t)
	e.init()
	state := filepath.Join(e.dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	r := e.run("publish", "vm1:latest", "--state-dir", state)
	if r.code != exitFailure || !strings.Contains(r.stderr, "is not a private directory") || strings.Contains(r.stderr, "did not start") {
		t.Errorf("exit %d, stderr %q: want it refused before the serving process starts", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("made in the state directory: %v", entries)
	}
}
