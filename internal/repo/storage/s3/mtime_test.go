package s3_test

import (
	"context"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/testutil/s3test"
)

// TestModTimeSurvivesRename: an object's modification time has sub-second
// precision, moves on with Touch and is kept by Rename (a server-side copy,
// which gets a new Last-Modified). Without that gc, which moves a candidate
// aside and re-reads its time, saw every candidate as just touched and put
// it back.
func TestModTimeSurvivesRename(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, s3test.Start(t), "mtime", "p")
	if err := b.Save(ctx, "chunks/aa/x", []byte("data")); err != nil {
		t.Fatal(err)
	}
	st, err := b.Stat(ctx, "chunks/aa/x")
	if err != nil {
		t.Fatal(err)
	}
	if st.ModTime.Equal(st.ModTime.Truncate(time.Second)) {
		t.Errorf("modification time %v has no sub-second part", st.ModTime)
	}
	if err := b.Touch(ctx, "chunks/aa/x"); err != nil {
		t.Fatal(err)
	}
	touched, err := b.Stat(ctx, "chunks/aa/x")
	if err != nil || !touched.ModTime.After(st.ModTime) {
		t.Fatalf("after Touch: %v (%v), before %v", touched.ModTime, err, st.ModTime)
	}
	if err := b.Rename(ctx, "chunks/aa/x", "chunks/aa/x.gc"); err != nil {
		t.Fatal(err)
	}
	moved, err := b.Stat(ctx, "chunks/aa/x.gc")
	if err != nil || !moved.ModTime.Equal(touched.ModTime) {
		t.Errorf("after Rename: %v (%v), want %v", moved.ModTime, err, touched.ModTime)
	}
}
