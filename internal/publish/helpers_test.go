package publish

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
	"github.com/holdfast-backup/holdfast/internal/testutil/guestimg"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

// needPublish skips the test unless it can publish: root, /dev/fuse and
// the tools.
func needPublish(t *testing.T) { guestimg.NeedPublishHost(t) }

// backupImages backs up the images as one point of vm.
func backupImages(t *testing.T, vm string, imgs ...string) (*repo.Repository, *repo.Manifest) {
	t.Helper()
	ctx := context.Background()
	r := testrepo.New(t, nil)
	var disks []source.Disk
	for _, img := range imgs {
		d, err := file.Open(ctx, img, file.Options{Format: file.FormatRaw})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		disks = append(disks, d)
	}
	m, err := pipeline.BackupPoint(ctx, r, pipeline.PointRequest{VM: vm, Disks: disks, ChunkSize: repo.MinChunkSize}, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r, m
}

// publishT publishes m and closes the session when the test ends (if the
// test did not).
func publishT(t *testing.T, r *repo.Repository, m *repo.Manifest) *Session {
	t.Helper()
	dir := t.TempDir()
	s, err := Publish(context.Background(), Options{Store: r, Holder: r, Point: m, StateDir: filepath.Join(dir, "state"),
		MountDir: filepath.Join(dir, "mnt")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(s.recs.path(s.ID)); err == nil {
			if err := s.Close(context.Background()); err != nil {
				t.Errorf("close at cleanup: %v", err)
			}
		}
	})
	return s
}

// sameFiles checks that every file reads back from dir as given.
func sameFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s: content differs (%d bytes, want %d)", dir, name, len(got), len(want))
		}
	}
}

// assertGone checks that nothing of session s is left: no mount under its
// mount directory or its FUSE directory, no loop device backed by its disk
// files, no partition device of the loop devices it had, no record.
func assertGone(t *testing.T, s *Session) {
	t.Helper()
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.MountDir, s.recs.SessionDir(s.ID)} {
		if strings.Contains(string(info), " "+p) {
			t.Errorf("a mount under %s is left", p)
		}
	}
	for _, d := range s.Disks {
		if loops, _ := (Host{}).LoopsOf(d.File); len(loops) > 0 {
			t.Errorf("loop devices of %s are left: %v", d.File, loops)
		}
		if d.Loop == "" {
			continue
		}
		parts, _ := filepath.Glob(d.Loop + "p*")
		for _, p := range parts {
			if b, _ := (Host{}).LoopBacking(d.Loop); b == "" {
				t.Errorf("partition device %s of detached %s is left", p, d.Loop)
			}
		}
	}
	for _, p := range []string{s.MountDir, s.recs.SessionDir(s.ID), s.recs.path(s.ID)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left (%v)", p, err)
		}
	}
}

// isEROFS reports whether err is a read-only filesystem error.
func isEROFS(err error) bool { return errors.Is(err, syscall.EROFS) }
