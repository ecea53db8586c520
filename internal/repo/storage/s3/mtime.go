package s3

import (
	"strconv"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/minio/minio-go/v7"
)

// mtimeKey is user metadata that carries an object's modification time
// (Unix nanoseconds) through server-side copies. S3 gives a copy a new
// Last-Modified, so without it Rename — gc moving a candidate aside —
// made every candidate look just touched: gc re-read the aside copy's time,
// found it newer than its cut-off and put the chunk back, freeing nothing
// unless the grace was shorter than the sweep. Save and Touch set it; a
// copy keeps it (metadata directive COPY); Stat prefers it.
const mtimeKey = "Holdfast-Mtime"

// mtimeMeta is the metadata that stamps an object with the time now.
func mtimeMeta() map[string]string {
	return map[string]string{mtimeKey: strconv.FormatInt(clock.Real().Now().UnixNano(), 10)}
}

// modTime is an object's modification time: the stamped one when present,
// else Last-Modified (objects written before the stamp existed).
func modTime(o minio.ObjectInfo) time.Time {
	v := o.UserMetadata[mtimeKey]
	if v == "" {
		v = o.Metadata.Get("X-Amz-Meta-" + mtimeKey)
	}
	if ns, err := strconv.ParseInt(v, 10, 64); err == nil && v != "" {
		return time.Unix(0, ns).UTC()
	}
	return o.LastModified
}
