package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/s3test"
)

// s3Env is a test environment whose repository is a bucket of a real S3
// server (versitygw).
func s3Env(t *testing.T, bucket string) (*env, *s3test.Server) {
	t.Helper()
	srv := s3test.Start(t)
	e := newEnv(t)
	e.repo = srv.URL(bucket, "holdfast/site-a")
	e.vars = append(e.vars, "HOLDFAST_REPOSITORY="+e.repo, "AWS_ACCESS_KEY_ID="+s3test.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+s3test.SecretKey, "AWS_REGION=us-east-1",
		"XDG_CACHE_HOME="+filepath.Join(e.dir, "cache")) // the chunk cache, not the user's

	return e, srv
}

// TestS3Repository runs the backup cycle on object storage: init creates
// the bucket, backup, incremental, restore, verify, forget and gc.
func TestS3Repository(t *testing.T) {
	e, _ := s3Env(t, "cycle")
	e.init()
	img := filepath.Join(e.dir, "vm1.img")
	writeImage(t, img, 32<<20, map[int64][]byte{0: randomBytes(3 << 20), 20 << 20: randomBytes(1 << 20)})
	b1 := e.backupJSON("vm1", img)
	writeImage(t, img, 32<<20, map[int64][]byte{0: randomBytes(3 << 20), 20 << 20: randomBytes(1 << 20), 30 << 20: randomBytes(1 << 20)})
	b2 := e.backupJSON("vm1", img)
	if b2.Disks[0].BytesNew > 6<<20 {
		t.Errorf("incremental stored %d new bytes", b2.Disks[0].BytesNew)
	}
	out := filepath.Join(e.dir, "restored.img")
	e.ok("restore", "vm1:latest", "--disk", "0", "--to", out)
	sameFile(t, img, out)
	if r := e.run("verify", "--read-data"); r.code != 0 || !strings.Contains(r.stdout, "no errors") {
		t.Fatalf("verify: %+v", r)
	}
	e.ok("forget", "--keep-last", "1")
	var gc struct {
		Removed int `json:"removed_chunks"`
	}
	if err := json.Unmarshal([]byte(e.ok("gc", "--grace", "0s", "--json")), &gc); err != nil || gc.Removed < 3 {
		t.Errorf("gc removed %d chunks (%v), want the first point's 3+", gc.Removed, err)
	}
	if r := e.run("verify", "--read-data"); r.code != 0 {
		t.Fatalf("verify after gc: %+v", r)
	}
	e.ok("restore", b2.Point, "--disk", "0", "--to", out, "--force")
	sameFile(t, img, out)
	if r := e.run("points"); strings.Contains(r.stdout, b1.Point) || !strings.Contains(r.stdout, b2.Point) {
		t.Errorf("points after forget: %s", r.stdout)
	}
}

// TestS3RepositoryErrors: wrong keys, no repository and a bad URL give
// clear errors that hold no secret.
func TestS3RepositoryErrors(t *testing.T) {
	e, srv := s3Env(t, "errors")
	if r := e.run("points"); r.code == 0 || !strings.Contains(r.stderr, "repository not found") {
		t.Errorf("points on an empty bucket: %+v", r)
	}
	e.init()
	e.vars = append(e.vars, "AWS_SECRET_ACCESS_KEY=hunter2-wrong")
	r := e.run("points")
	if r.code == 0 || !strings.Contains(r.stderr, "access refused") || strings.Contains(r.stderr+r.stdout, "hunter2") {
		t.Errorf("points with a wrong secret: %+v", r)
	}
	r = e.run("points", "--repo", "s3://AKIA:hunter2@"+srv.Endpoint+"/errors")
	if r.code != 2 || !strings.Contains(r.stderr, "keys do not go in the URL") || strings.Contains(r.stderr, "hunter2") {
		t.Errorf("keys in the URL: %+v", r)
	}
}

// TestS3ChunkCache: backups on object storage keep a chunk cache under the
// user's cache directory; a gc that removed chunks makes it stale (a backup
// of the same data then stores them again rather than trusting the cache);
// a deleted or damaged cache is rebuilt.
func TestS3ChunkCache(t *testing.T) {
	e, _ := s3Env(t, "cache")
	e.init()
	imgA, imgB := filepath.Join(e.dir, "a.img"), filepath.Join(e.dir, "b.img")
	writeImage(t, imgA, 8<<20, map[int64][]byte{0: randomBytes(4 << 20)})
	writeImage(t, imgB, 8<<20, map[int64][]byte{0: randomBytes(4 << 20)})
	e.backupJSON("vm1", imgA)
	caches, _ := filepath.Glob(filepath.Join(e.dir, "cache", "holdfast", "*", "chunks"))
	if len(caches) != 1 {
		t.Fatalf("chunk cache files: %v", caches)
	}
	e.backupJSON("vm1", imgB)
	e.ok("forget", "--keep-last", "1")
	e.ok("gc", "--grace", "0s")
	// a.img's chunks are gone from the bucket but in the cache.
	b := e.backupJSON("vm1", imgA)
	if b.Disks[0].BytesNew < 4<<20 {
		t.Errorf("backup after gc stored %d new bytes: it trusted a stale cache", b.Disks[0].BytesNew)
	}
	if r := e.run("verify", "--read-data"); r.code != 0 {
		t.Fatalf("verify: %+v", r)
	}
	if err := os.WriteFile(caches[0], []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.backupJSON("vm1", imgA)
	if err := os.Remove(caches[0]); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("repo", "cache", "rebuild"); !strings.Contains(out, "chunk cache rebuilt: ") {
		t.Errorf("rebuild: %s", out)
	}
	if _, err := os.Stat(caches[0]); err != nil {
		t.Errorf("cache not rebuilt: %v", err)
	}
	out := filepath.Join(e.dir, "restored.img")
	e.ok("restore", "vm1:latest", "--disk", "0", "--to", out)
	sameFile(t, imgA, out)
}
