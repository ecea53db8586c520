package s3_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/s3"
	"github.com/holdfast-backup/holdfast/internal/testutil/s3test"
	"github.com/holdfast-backup/holdfast/internal/testutil/storagetest"
)

// TestConformance runs the backend suite against a real S3 server, each
// test in a bucket of its own, with and without a prefix.
func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	var n atomic.Int64
	for _, prefix := range []string{"", "repos/a"} {
		t.Run(fmt.Sprintf("prefix %q", prefix), func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) storage.Backend {
				return newBackend(t, srv, fmt.Sprintf("bucket-%d", n.Add(1)), prefix)
			})
		})
	}
}

func newBackend(t *testing.T, srv *s3test.Server, bucket, prefix string) *s3.Backend {
	t.Helper()
	return newBackendLock(t, srv, bucket, prefix, false)
}

// newBackendLock is newBackend with the bucket created with Object Lock
// when lock is set.
func newBackendLock(t *testing.T, srv *s3test.Server, bucket, prefix string, lock bool) *s3.Backend {
	t.Helper()
	tg, err := s3.ParseURL(srv.URL(bucket, prefix))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s3.New(tg, s3.Options{Getenv: srv.Getenv, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureBucket(context.Background(), lock); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWrongKeys: refused credentials give a clear error that names no
// secret.
func TestWrongKeys(t *testing.T) {
	srv := s3test.Start(t)
	newBackend(t, srv, "keys", "")
	tg, _ := s3.ParseURL(srv.URL("keys", ""))
	env := func(k string) string {
		if k == "AWS_SECRET_ACCESS_KEY" {
			return "hunter2-wrong-secret"
		}
		return srv.Getenv(k)
	}
	b, err := s3.New(tg, s3.Options{Getenv: env, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Save(context.Background(), "config", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "access refused") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("save with a wrong secret: %v", err)
	}
}
