package s3

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/minio/minio-go/v7"
)

var _ storage.Locker = (*Backend)(nil)

// Object Lock headers of a HEAD answer. The retention is read from them
// rather than with GetObjectRetention: it costs the same one request, and
// some servers (versitygw v1.8.0) answer GetObjectRetention with an XML
// root element minio-go does not accept.
const (
	hdrLockMode  = "X-Amz-Object-Lock-Mode"
	hdrLockUntil = "X-Amz-Object-Lock-Retain-Until-Date"
)

func toMinioMode(mode string) (minio.RetentionMode, error) {
	switch mode {
	case storage.ModeCompliance:
		return minio.Compliance, nil
	case storage.ModeGovernance:
		return minio.Governance, nil
	}
	return "", fmt.Errorf("retention mode %q: want %s or %s", mode, storage.ModeCompliance, storage.ModeGovernance)
}

// SaveLocked stores data as one object version with a retention.
func (b *Backend) SaveLocked(ctx context.Context, name string, data []byte, r storage.Retention) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	mode, err := toMinioMode(r.Mode)
	if err != nil {
		return err
	}
	k, err := b.key(name)
	if err != nil {
		return err
	}
	_, err = b.mc.PutObject(ctx, b.t.Bucket, k, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true, SendContentMd5: true,
			Mode: mode, RetainUntilDate: r.Until.UTC()})
	return b.wrap(name, err)
}

// Retention reads the retention of the current version of name.
func (b *Backend) Retention(ctx context.Context, name string) (storage.Retention, error) {
	return b.VersionRetention(ctx, name, "")
}

// VersionRetention reads the retention of one version ("" the current).
func (b *Backend) VersionRetention(ctx context.Context, name, versionID string) (storage.Retention, error) {
	if err := ctx.Err(); err != nil {
		return storage.Retention{}, err
	}
	k, err := b.key(name)
	if err != nil {
		return storage.Retention{}, err
	}
	st, err := b.mc.StatObject(ctx, b.t.Bucket, k, minio.StatObjectOptions{VersionID: versionID})
	if err != nil {
		return storage.Retention{}, b.wrap(name, err)
	}
	return parseRetention(name, st.Metadata)
}

// parseRetention reads the Object Lock headers of a HEAD answer.
func parseRetention(name string, h http.Header) (storage.Retention, error) {
	mode, until := strings.ToLower(h.Get(hdrLockMode)), h.Get(hdrLockUntil)
	if mode == "" && until == "" {
		return storage.Retention{}, nil
	}
	t, err := time.Parse(time.RFC3339, until)
	if err != nil || t.IsZero() || (mode != storage.ModeCompliance && mode != storage.ModeGovernance) {
		return storage.Retention{}, fmt.Errorf("%s: unreadable Object Lock headers (mode %q, retain until %q)", name, mode, until)
	}
	return storage.Retention{Mode: mode, Until: t}, nil
}

// ExtendRetention moves the current version's retention to r.Until. It
// never shortens: when the version is already locked at least as long
// (another writer extended it first), it does nothing.
func (b *Backend) ExtendRetention(ctx context.Context, name string, r storage.Retention) error {
	mode, err := toMinioMode(r.Mode)
	if err != nil {
		return err
	}
	k, err := b.key(name)
	if err != nil {
		return err
	}
	until := r.Until.UTC()
	err = b.mc.PutObjectRetention(ctx, b.t.Bucket, k, minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &until})
	if err == nil {
		return nil
	}
	werr := b.wrap(name, err)
	if cur, rerr := b.Retention(ctx, name); rerr == nil && !cur.Until.Before(r.Until) {
		return nil // refused because it is already locked longer
	}
	return werr
}

// Versions lists every version and delete marker of the file dir or below
// the directory dir ("" the whole repository).
func (b *Backend) Versions(ctx context.Context, dir string, fn func(storage.Version) error) error {
	prefix, strip, err := b.listPrefix(dir)
	if err != nil {
		return err
	}
	prefix = strings.TrimSuffix(prefix, "/") // dir may be a file: "chunks/ab/ab12…"
	dir = strings.Trim(dir, "/")
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range b.mc.ListObjects(lctx, b.t.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			if isNotFound(o.Err) {
				return nil
			}
			return b.wrap(dir, o.Err)
		}
		if strings.HasSuffix(o.Key, "/") || isGatewayTemp(o.Key) {
			continue
		}
		name := strings.TrimPrefix(o.Key, strip)
		if dir != "" && name != dir && !strings.HasPrefix(name, dir+"/") {
			continue // "chunks/ab/ab12….gc" when listing "chunks/ab/ab12…"
		}
		v := storage.Version{Name: name, VersionID: o.VersionID, Size: o.Size,
			ModTime: o.LastModified, Latest: o.IsLatest, DeleteMarker: o.IsDeleteMarker}
		if err := fn(v); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// RemoveVersion deletes one version or delete marker for good. It never
// asks to bypass a governance retention.
func (b *Backend) RemoveVersion(ctx context.Context, name, versionID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if versionID == "" {
		return fmt.Errorf("%s/%s: remove version: no version id", b.t, name)
	}
	k, err := b.key(name)
	if err != nil {
		return err
	}
	err = b.mc.RemoveObject(ctx, b.t.Bucket, k, minio.RemoveObjectOptions{VersionID: versionID})
	if isNotFound(err) {
		return nil
	}
	return b.wrap(name, err)
}

// checkBucketLock fails unless an existing bucket has Object Lock enabled
// (which S3 only allows at creation).
func (b *Backend) checkBucketLock(ctx context.Context) error {
	enabled, _, _, _, err := b.mc.GetObjectLockConfig(ctx, b.t.Bucket)
	if err == nil && enabled == "Enabled" {
		return nil
	}
	if err != nil && minio.ToErrorResponse(err).Code != "ObjectLockConfigurationNotFoundError" && !isNotFound(err) {
		return fmt.Errorf("%s: read the bucket's Object Lock configuration: %w", b.t, err)
	}
	return fmt.Errorf("%s: the bucket exists without Object Lock, which can only be enabled when a bucket is created: use a new bucket", b.t)
}
