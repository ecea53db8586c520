package nbd

import "net/url"

// redact drops any user information from a URL for messages and manifests.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
