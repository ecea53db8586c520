// Package s3 is the object-storage backend of the repository: a
// storage.Backend over any S3-compatible service (AWS, Ceph RGW, MinIO,
// versitygw, Wasabi …) through minio-go.
//
// A repository lives under s3://HOST[:PORT]/BUCKET[/PREFIX] (HTTPS) or
// s3+http://… (plain HTTP, for a gateway on a trusted network). Each file
// of the repository is one object named PREFIX/NAME. The backend contract
// maps onto S3 like this:
//
//   - Save is one PUT: S3 makes an object visible only once it is
//     complete, so a reader sees the old or the new content, never a mix.
//   - Sync does nothing: a PUT that succeeded is durable.
//   - Touch copies the object onto itself with new metadata, which gives it
//     a new Last-Modified (the time GC compares with its cut-off). Save and
//     Touch also stamp the time (ns) in metadata that server-side copies
//     keep, and Stat reports it: Rename then keeps the time (mtime.go).
//   - Rename is a server-side copy then a delete. It is not atomic: GC,
//     its only user, runs under the repository's exclusive lock. It never
//     replaces a target: it checks first, and asks the server to refuse an
//     existing target (If-None-Match) where the server supports it.
//   - List walks the prefix with ListObjectsV2 (paged by the library).
//
// It is also a storage.Locker (lock.go) on a bucket created with Object
// Lock: SaveLocked is a PUT with x-amz-object-lock-mode and
// -retain-until-date; the retention is read from a HEAD's headers;
// ExtendRetention is PutObjectRetention (never with the governance bypass
// header); Versions is ListObjectVersions; RemoveVersion a DELETE with a
// version id, which the server refuses for a locked version.
//
// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
// AWS_SESSION_TOKEN), else the shared credentials file
// (~/.aws/credentials, AWS_SHARED_CREDENTIALS_FILE, profile AWS_PROFILE);
// the region from AWS_REGION. They never appear in a message: Location
// and every error name the endpoint, bucket and prefix only.
//
// Requests are retried by minio-go with exponential backoff on 5xx, 503
// SlowDown, throttling and network errors; every operation is idempotent
// (a PUT whose answer was lost is simply sent again).
package s3
