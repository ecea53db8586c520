package s3

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/tlsconf"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Options shape the connection.
type Options struct {
	// Insecure skips the server certificate check (https only). Only when
	// asked for.
	Insecure bool
	// Getenv reads the environment for credentials and region (nil: none;
	// then Creds must be set).
	Getenv func(string) string
	// Creds overrides the credentials (tests).
	Creds *credentials.Credentials
	// Transport overrides the HTTP transport (tests inject faults).
	Transport http.RoundTripper
	// PathStyle forces path-style requests (http://host/bucket/key); by
	// default minio-go chooses (virtual-host style for AWS).
	PathStyle bool
}

// Backend stores repository files as objects.
type Backend struct {
	t  Target
	mc *minio.Client
}

var _ storage.Backend = (*Backend)(nil)

// New connects to the target. It does not contact the server.
func New(t Target, o Options) (*Backend, error) {
	creds := o.Creds
	if creds == nil {
		creds = chainCredentials(o.Getenv)
	}
	tr := o.Transport
	if tr == nil {
		ht, err := minio.DefaultTransport(t.Secure)
		if err != nil {
			return nil, err
		}
		if t.Secure {
			tc := tlsconf.Base()
			tc.InsecureSkipVerify = o.Insecure
			ht.TLSClientConfig = tc
		}
		ht.MaxIdleConnsPerHost = 64
		tr = ht
	}
	region := ""
	if o.Getenv != nil {
		region = o.Getenv("AWS_REGION")
	}
	lookup := minio.BucketLookupAuto
	switch {
	case o.PathStyle || t.Style == StylePath:
		lookup = minio.BucketLookupPath
	case t.Style == StyleVirtual:
		lookup = minio.BucketLookupDNS
	}
	mc, err := minio.New(t.Endpoint, &minio.Options{Creds: creds, Secure: t.Secure, Transport: tr, Region: region, BucketLookup: lookup})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	return &Backend{t: t, mc: mc}, nil
}

// chainCredentials reads the AWS environment, then the shared credentials
// file.
func chainCredentials(getenv func(string) string) *credentials.Credentials {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var ps []credentials.Provider
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		ps = append(ps, &credentials.Static{Value: credentials.Value{AccessKeyID: id, SecretAccessKey: secret,
			SessionToken: getenv("AWS_SESSION_TOKEN"), SignerType: credentials.SignatureV4}})
	}
	ps = append(ps, &credentials.FileAWSCredentials{Filename: getenv("AWS_SHARED_CREDENTIALS_FILE"), Profile: getenv("AWS_PROFILE")})
	return credentials.NewChainCredentials(ps)
}

// Location names the bucket and prefix (no secrets).
func (b *Backend) Location() string { return b.t.String() }

// Target returns where the backend stores.
func (b *Backend) Target() Target { return b.t }

func (b *Backend) key(name string) (string, error) {
	clean := path.Clean("/" + name)
	if clean == "/" || strings.Contains(name, "\\") || clean != "/"+name {
		return "", fmt.Errorf("invalid storage name %q", name)
	}
	if b.t.Prefix == "" {
		return clean[1:], nil
	}
	return b.t.Prefix + clean, nil
}

// EnsureBucket creates the bucket when it is missing, with Object Lock
// enabled when lock is set (a bucket's Object Lock can only be chosen at
// creation).
func (b *Backend) EnsureBucket(ctx context.Context, lock bool) error {
	ok, err := b.mc.BucketExists(ctx, b.t.Bucket)
	if err != nil {
		return fmt.Errorf("%s: %w", b.t, err)
	}
	if ok {
		if lock {
			return b.checkBucketLock(ctx)
		}
		return nil
	}
	err = b.mc.MakeBucket(ctx, b.t.Bucket, minio.MakeBucketOptions{ObjectLocking: lock})
	if c := minio.ToErrorResponse(err).Code; c == "BucketAlreadyOwnedByYou" {
		return nil // an earlier attempt succeeded and its answer was lost
	}
	if err != nil {
		return fmt.Errorf("%s: create bucket: %w", b.t, err)
	}
	return nil
}

// Save stores data as one object.
func (b *Backend) Save(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, err := b.key(name)
	if err != nil {
		return err
	}
	// minio-go retries from the reader's start: a bytes.Reader seeks back
	_, err = b.mc.PutObject(ctx, b.t.Bucket, k, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true, SendContentMd5: true,
			UserMetadata: mtimeMeta()})
	return b.wrap(name, err)
}

// Sync does nothing: an object that was PUT is durable.
func (b *Backend) Sync(ctx context.Context) error { return ctx.Err() }

// Load reads a whole object.
func (b *Backend) Load(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k, err := b.key(name)
	if err != nil {
		return nil, err
	}
	o, err := b.mc.GetObject(ctx, b.t.Bucket, k, minio.GetObjectOptions{})
	if err != nil {
		return nil, b.wrap(name, err)
	}
	defer o.Close()
	data, err := io.ReadAll(o)
	if err != nil {
		return nil, b.wrap(name, err)
	}
	return data, nil
}

// Stat describes an object.
func (b *Backend) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return storage.FileInfo{}, err
	}
	k, err := b.key(name)
	if err != nil {
		return storage.FileInfo{}, err
	}
	st, err := b.mc.StatObject(ctx, b.t.Bucket, k, minio.StatObjectOptions{})
	if err != nil {
		return storage.FileInfo{}, b.wrap(name, err)
	}
	return storage.FileInfo{Name: name, Size: st.Size, ModTime: modTime(st)}, nil
}

// Touch gives an object a new Last-Modified by copying it onto itself
// with replaced metadata.
func (b *Backend) Touch(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, err := b.key(name)
	if err != nil {
		return err
	}
	src := minio.CopySrcOptions{Bucket: b.t.Bucket, Object: k}
	dst := minio.CopyDestOptions{Bucket: b.t.Bucket, Object: k, ReplaceMetadata: true,
		UserMetadata: mtimeMeta()}
	_, err = b.mc.CopyObject(ctx, dst, src)
	return b.wrap(name, err)
}

// Rename copies from to to on the server and deletes from. An existing
// target is refused.
func (b *Backend) Rename(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	kf, err := b.key(from)
	if err != nil {
		return err
	}
	kt, err := b.key(to)
	if err != nil {
		return err
	}
	if _, err := b.mc.StatObject(ctx, b.t.Bucket, kt, minio.StatObjectOptions{}); err == nil {
		return fmt.Errorf("%s: rename %s to %s: %w", b.t, from, to, storage.ErrExist)
	} else if !isNotFound(err) {
		return b.wrap(to, err)
	}
	src := minio.CopySrcOptions{Bucket: b.t.Bucket, Object: kf}
	dst := minio.CopyDestOptions{Bucket: b.t.Bucket, Object: kt}
	if _, err := b.mc.CopyObject(ctx, dst, src); err != nil {
		return b.wrap(from, err)
	}
	err = b.mc.RemoveObject(ctx, b.t.Bucket, kf, minio.RemoveObjectOptions{})
	return b.wrap(from, err)
}

// Remove deletes an object; a missing one is no error.
func (b *Backend) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, err := b.key(name)
	if err != nil {
		return err
	}
	err = b.mc.RemoveObject(ctx, b.t.Bucket, k, minio.RemoveObjectOptions{})
	if isNotFound(err) {
		return nil
	}
	return b.wrap(name, err)
}

// List walks every object below dir.
func (b *Backend) List(ctx context.Context, dir string, fn func(storage.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	prefix, strip, err := b.listPrefix(dir)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn fails
	for o := range b.mc.ListObjects(lctx, b.t.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			if isNotFound(o.Err) {
				return nil // no bucket yet: nothing below dir
			}
			return b.wrap(dir, o.Err)
		}
		if strings.HasSuffix(o.Key, "/") || isGatewayTemp(o.Key) {
			continue // a directory marker some tools create, a gateway's partial upload
		}
		if err := fn(storage.FileInfo{Name: strings.TrimPrefix(o.Key, strip), Size: o.Size, ModTime: o.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// listPrefix returns the key prefix that lists dir and the part of the
// keys to strip to get names.
func (b *Backend) listPrefix(dir string) (prefix, strip string, err error) {
	prefix = b.t.Prefix
	if d := strings.Trim(dir, "/"); d != "" {
		if prefix, err = b.key(d); err != nil {
			return "", "", err
		}
	}
	if prefix != "" {
		prefix += "/"
	}
	if b.t.Prefix != "" {
		strip = b.t.Prefix + "/"
	}
	return prefix, strip, nil
}

// isGatewayTemp reports a partial upload a file-system gateway shows in
// listings (versitygw's posix backend, where the file system has no
// O_TMPFILE, names them DIR/.f.sgwtmp.N). Repository names never start
// with a dot.
func isGatewayTemp(key string) bool {
	return strings.HasPrefix(path.Base(key), ".") && strings.Contains(path.Base(key), "sgwtmp")
}

// isNotFound reports an S3 "no such key/bucket" answer.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey" || r.Code == "NoSuchBucket"
}

// wrap names the object in an error and maps "not found" to
// storage.ErrNotExist. S3 error texts hold no credentials.
func (b *Backend) wrap(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case isNotFound(err):
		return fmt.Errorf("%s/%s: %w", b.t, name, storage.ErrNotExist)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var terr *tls.CertificateVerificationError
	if errors.As(err, &terr) {
		return fmt.Errorf("%s: the server certificate is not trusted (%v); add its CA to the system or use --s3-insecure on a network you trust", b.t, terr.Err)
	}
	r := minio.ToErrorResponse(err)
	if r.Code == "AccessDenied" && strings.Contains(strings.ToLower(r.Message), "object lock") || r.Code == "ObjectLocked" {
		return fmt.Errorf("%s/%s: %w (%s)", b.t, name, storage.ErrRetention, r.Message)
	}
	if r.Code == "AccessDenied" || r.Code == "InvalidAccessKeyId" || r.Code == "SignatureDoesNotMatch" {
		return fmt.Errorf("%s/%s: access refused (%s): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", b.t, name, r.Code)
	}
	return fmt.Errorf("%s/%s: %w", b.t, name, err)
}
