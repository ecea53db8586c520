package libvirtconn

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseURI: any connection URI parses or is refused without a panic,
// and an error never names the URI's user or password.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"qemu:///system", "qemu+unix:///system?socket=/s", "qemu+ssh://alice@kvm1:2222/system?socket=/s&keyfile=/k&known_hosts=/h",
		"qemu+ssh://alice:pw@kvm1/system", "qemu+ssh://kvm1/system?no_verify=1", "qemu+ssh://[::1]:22/system", "%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		ep, err := parseURI(uri)
		if err == nil {
			if ep.socket == "" {
				t.Fatalf("%q: no socket", uri)
			}
			return
		}
		u, perr := url.Parse(uri)
		if perr != nil || u.User == nil {
			return
		}
		for _, secret := range []string{u.User.Username(), func() string { p, _ := u.User.Password(); return p }()} {
			if len(secret) >= 4 && strings.Contains(err.Error(), secret) && !strings.Contains(Redact(uri), secret) {
				t.Fatalf("%q: error names %q: %v", uri, secret, err)
			}
		}
	})
}
