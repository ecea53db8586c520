package s3

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Target is a parsed repository URL:
// s3://HOST[:PORT]/BUCKET[/PREFIX][?style=path|virtual].
type Target struct {
	Endpoint string // HOST[:PORT]
	Secure   bool   // https (s3://) or plain http (s3+http://)
	Bucket   string
	Prefix   string // "" or "a/b" (no leading or trailing slash)
	// Style is how requests name the bucket: StylePath
	// (https://HOST/BUCKET/KEY), StyleVirtual (https://BUCKET.HOST/KEY), or
	// "" to let the client choose (virtual-host style for AWS, path style
	// for other endpoints).
	Style string
}

// Bucket addressing styles (the URL's ?style=).
const (
	StylePath    = "path"
	StyleVirtual = "virtual"
)

// IsURL reports whether s names an object-storage repository.
func IsURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "s3://") || strings.HasPrefix(l, "s3+http://")
}

// ParseURL reads s3://HOST[:PORT]/BUCKET[/PREFIX][?style=path|virtual] or
// s3+http://…. Keys do not go in the URL.
func ParseURL(s string) (Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("repository URL: %w", err)
	}
	var t Target
	switch strings.ToLower(u.Scheme) {
	case "s3":
		t.Secure = true
	case "s3+http":
	default:
		return Target{}, fmt.Errorf("repository URL %s: want s3://HOST[:PORT]/BUCKET[/PREFIX] or s3+http://…", u.Redacted())
	}
	if u.User != nil {
		return Target{}, fmt.Errorf("repository URL %s://%s%s: keys do not go in the URL (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", u.Scheme, u.Host, u.Path)
	}
	if u.Host == "" || u.Fragment != "" || u.ForceQuery {
		return Target{}, fmt.Errorf("repository URL %s://%s%s: want s3://HOST[:PORT]/BUCKET[/PREFIX][?style=path|virtual]", u.Scheme, u.Host, u.Path)
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		st := q.Get("style")
		if err != nil || len(q) != 1 || len(q["style"]) != 1 || st != StylePath && st != StyleVirtual {
			return Target{}, fmt.Errorf("repository URL %s://%s%s: the only query is ?style=path or ?style=virtual", u.Scheme, u.Host, u.Path)
		}
		t.Style = st
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	prefix = strings.Trim(prefix, "/")
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return Target{}, fmt.Errorf("repository URL %s: bucket %q: %w", u.Redacted(), bucket, err)
	}
	for _, p := range strings.Split(prefix, "/") {
		if prefix != "" && (p == "" || p == "." || p == "..") {
			return Target{}, fmt.Errorf("repository URL %s: bad prefix %q", u.Redacted(), prefix)
		}
	}
	t.Endpoint, t.Bucket, t.Prefix = u.Host, bucket, prefix
	return t, nil
}

// String is the URL again, for messages.
func (t Target) String() string {
	scheme := "s3"
	if !t.Secure {
		scheme = "s3+http"
	}
	s := scheme + "://" + t.Endpoint + "/" + t.Bucket
	if t.Prefix != "" {
		s += "/" + t.Prefix
	}
	if t.Style != "" {
		s += "?style=" + t.Style
	}
	return s
}
