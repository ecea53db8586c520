package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/testutil/s3test"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TestS3ObjectLock runs the attack the lock is for, against a real S3
// server with the real binary: an attacker holding the storage
// credentials hides every point and chunk with plain DELETEs, and fails to
// delete locked versions or to shorten their retention; forget refuses
// the locked points; repo recover brings the points back, and verify and
// restore succeed.
func TestS3ObjectLock(t *testing.T) {
	e, srv := s3Env(t, "locked")
	out := e.ok("repo", "init", "--object-lock", "1")
	if !strings.Contains(out, "locked for 1 days (compliance mode)") {
		t.Errorf("init: %s", out)
	}
	img := filepath.Join(e.dir, "vm1.img")
	writeImage(t, img, 16<<20, map[int64][]byte{0: randomBytes(2 << 20)})
	b1 := e.backupJSON("vm1", img)
	writeImage(t, img, 16<<20, map[int64][]byte{0: randomBytes(2 << 20), 8 << 20: randomBytes(1 << 20)})
	b2 := e.backupJSON("vm1", img)

	// forget refuses the locked point and says until when
	r := e.run("forget", "--keep-last", "1")
	if r.code != exitImmutable || !strings.Contains(r.stderr, b1.Point) || !strings.Contains(r.stderr, "Object Lock") || !strings.Contains(r.stderr, " until ") {
		t.Fatalf("forget of a locked point: %+v", r)
	}
	// gc deletes nothing that is locked
	e.ok("gc", "--grace", "0s")

	ctx := context.Background()
	mc, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3test.AccessKey, s3test.SecretKey, ""),
		Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	hidden := 0
	versions := map[string]int{}
	for _, dir := range []string{"config", "keys/", "points/", "chunks/", "indexes/"} {
		for o := range mc.ListObjects(ctx, "locked", minio.ListObjectsOptions{Prefix: "holdfast/site-a/" + dir, Recursive: true, WithVersions: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			if strings.HasSuffix(o.Key, "/") || strings.Contains(o.Key, "sgwtmp") {
				continue
			}
			versions[o.Key]++
			short := time.Now().Add(time.Minute)
			mode := minio.Compliance
			if err := mc.PutObjectRetention(ctx, "locked", o.Key, minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &short, VersionID: o.VersionID, GovernanceBypass: true}); err == nil {
				t.Errorf("%s: the retention was shortened", o.Key)
			}
			if err := mc.RemoveObject(ctx, "locked", o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID, GovernanceBypass: true}); err == nil {
				t.Errorf("%s: a locked version was deleted", o.Key)
			}
			if err := mc.RemoveObject(ctx, "locked", o.Key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatalf("plain delete of %s: %v", o.Key, err)
			}
			hidden++
		}
	}
	if hidden < 5 {
		t.Fatalf("the attacker hid only %d objects", hidden)
	}
	for k, n := range versions {
		if n != 1 {
			t.Errorf("%s had %d versions before the attack: reusing a chunk must not write one", k, n)
		}
	}
	if r := e.run("points"); r.code != exitNoRepository {
		t.Fatalf("points with the config hidden: %+v", r)
	}

	if r := e.run("repo", "recover", "--dry-run"); r.code != 0 || !strings.Contains(r.stdout, "would bring back") {
		t.Fatalf("recover --dry-run: %+v", r)
	}
	var rec struct {
		Points  []string       `json:"points"`
		Files   map[string]int `json:"files"`
		Markers int            `json:"removed_delete_markers"`
	}
	if err := json.Unmarshal([]byte(e.ok("repo", "recover", "--json")), &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.Points) != 2 || rec.Markers != hidden || rec.Files["chunks"] == 0 || rec.Files["config"] != 1 || rec.Files["keys"] != 1 {
		t.Fatalf("recover: %+v (hid %d)", rec, hidden)
	}
	for _, p := range []string{b1.Point, b2.Point} {
		if !strings.Contains(strings.Join(rec.Points, " "), p) {
			t.Errorf("point %s did not come back: %v", p, rec.Points)
		}
	}
	if r := e.run("verify", "--read-data"); r.code != 0 || !strings.Contains(r.stdout, "no errors") {
		t.Fatalf("verify after recover: %+v", r)
	}
	restored := filepath.Join(e.dir, "restored.img")
	e.ok("restore", b2.Point, "--disk", "0", "--to", restored)
	sameFile(t, img, restored)
	if r := e.run("repo", "recover"); r.code != 0 || !strings.Contains(r.stdout, "nothing hidden") {
		t.Errorf("second recover: %+v", r)
	}
}

// TestObjectLockFlags: --object-lock on a directory points to the
// repository agent's immutable mode; bad values are usage errors.
func TestObjectLockFlags(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--object-lock", "7"}, "--immutable"},
		{[]string{"--object-lock", "0", "--repo", "s3://h/b"}, "want 1 to"},
		{[]string{"--object-lock", "7", "--object-lock-mode", "legal", "--repo", "s3://h/b"}, "compliance or governance"},
		{[]string{"--object-lock-mode", "governance"}, "needs --object-lock"},
	} {
		r := e.run(append([]string{"repo", "init"}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("repo init %v: %+v, want exit 2 and %q", tc.args, r, tc.want)
		}
	}
	e.init()
	if r := e.run("repo", "recover"); r.code != exitFailure || !strings.Contains(r.stderr, "versioned bucket") {
		t.Errorf("recover of a directory: %+v", r)
	}
}
