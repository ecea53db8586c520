package source

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// ErrSpec is matched by every error of Parse: the text does not name a
// source.
var ErrSpec = errors.New("invalid source")

// ErrScheme is matched by the error for an unsupported URL scheme.
var ErrScheme = errors.New("unsupported source scheme")

// maxSpecLen bounds a spec (PATH_MAX is 4096; URLs add a little).
const maxSpecLen = 8192

// Spec is a parsed source specification: what a job's disk entry or a
// backup's SOURCE argument names. Parse makes one; the zero Spec names
// nothing.
type Spec struct {
	// Kind is the platform.
	Kind Kind
	// Scheme is the lower-case URL scheme, "" for a plain path.
	Scheme string
	// Path is the local path a file source names, the socket of an
	// nbd+unix:// source or the QMP socket of a qemu:// VM ("" otherwise).
	Path string

	raw, redacted, key string
	row                kindRow
}

// Parse parses a source specification: an image path or file:// URL, an
// NBD URL or a qemu:// VM. Its errors wrap ErrSpec (and ErrScheme for an
// unknown scheme) and never quote a password or query secret.
func Parse(spec string) (Spec, error) {
	if spec == "" {
		return Spec{}, fmt.Errorf("%w: empty source", ErrSpec)
	}
	if len(spec) > maxSpecLen {
		return Spec{}, fmt.Errorf("%w: source longer than %d bytes", ErrSpec, maxSpecLen)
	}
	if i := strings.IndexFunc(spec, isControl); i >= 0 {
		return Spec{}, fmt.Errorf("%w: source %q…: control character", ErrSpec, redactText(spec[:i]))
	}
	scheme := schemeOf(spec)
	row, ok := lookup(scheme)
	if !ok {
		return Spec{}, fmt.Errorf("%w: source %s: %w %q (use %s)", ErrSpec, Redact(spec), ErrScheme, scheme, schemeList())
	}
	s := Spec{Kind: row.kind, Scheme: scheme, raw: spec, row: row}
	s.redacted = Redact(spec)
	if err := row.parse(&s, spec); err != nil {
		return Spec{}, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	return s, nil
}

// Raw returns the spec as given, to open it. It may hold secrets: never
// log it; log String().
func (s Spec) Raw() string { return s.raw }

// String returns the redacted form, for logs, messages and manifests: no
// user information, no value of a query parameter that may be secret.
func (s Spec) String() string { return s.redacted }

// IsFile reports whether the spec names a local image or block device.
func (s Spec) IsFile() bool { return s.Kind == KindFile }

// WholeVM reports whether the spec names a whole VM (its disks come from a
// snapshot taken by one task) rather than one disk.
func (s Spec) WholeVM() bool { return s.row.wholeVM }

// TLS reports whether the source is read over TLS.
func (s Spec) TLS() bool { return slices.Contains(s.row.transports, TransportNBDTLS) }

// ReachKey names where the source is read from, for matching a proxy's
// reach prefixes: a cleaned path, an NBD URL's scheme and host (or socket),
// a VM's QMP socket.
func (s Spec) ReachKey() string { return s.key }

// Transports returns the transports the source may be read with, in
// preference order.
func (s Spec) Transports() []Transport { return slices.Clone(s.row.transports) }

// Allows reports whether the source may be read with t.
func (s Spec) Allows(t Transport) bool { return slices.Contains(s.row.transports, t) }

// TransportsFor returns the transports the source may be read with under a
// preference ("" or auto: all of them; a transport it does not allow:
// none).
func (s Spec) TransportsFor(preference Transport) []Transport {
	if preference == "" || preference == TransportAuto {
		return s.Transports()
	}
	if s.Allows(preference) {
		return []Transport{preference}
	}
	return nil
}

// Redact returns the redacted form of a spec for a message, whether or
// not it parses.
func Redact(spec string) string {
	scheme := schemeOf(spec)
	if scheme == "" {
		return spec
	}
	row, _ := lookup(scheme) // an unknown scheme: no public query parameter
	return redactURL(spec, row.publicQuery)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// schemeOf returns the lower-case URL scheme of spec, or "" for a path.
// "x://…" is a URL; so is "x:…" for a scheme of the table (file:/a is a
// URL), while a path such as "a:b.img" stays a path.
func schemeOf(spec string) string {
	i := strings.IndexByte(spec, ':')
	if i <= 0 || !validScheme(spec[:i]) {
		return ""
	}
	scheme := strings.ToLower(spec[:i])
	if strings.HasPrefix(spec[i+1:], "//") {
		return scheme
	}
	if _, ok := lookup(scheme); ok {
		return scheme
	}
	return ""
}

// validScheme reports whether s is an RFC 3986 scheme.
func validScheme(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// redacted stands for a hidden value.
const redacted = "xxxxx"

// redactURL drops the user information and fragment of a URL and hides
// the values of query parameters not listed in public. A URL with nothing
// to hide is returned as written.
func redactURL(raw string, public []string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redactText(raw)
	}
	q := u.Query()
	secret := false
	for k, vs := range q {
		if !slices.Contains(public, k) {
			secret = true
			for i := range vs {
				vs[i] = redacted
			}
		}
	}
	if u.User == nil && u.Fragment == "" && !secret {
		return raw
	}
	u.User, u.Fragment, u.RawFragment = nil, "", ""
	if secret {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactText hides what may be secret in text that does not parse as a
// URL: anything before an '@' in the authority, and the query.
func redactText(raw string) string {
	s := raw
	if q := strings.IndexAny(s, "?#"); q >= 0 {
		s = s[:q] + "?" + redacted
	}
	if i := strings.Index(s, "://"); i >= 0 {
		auth := s[i+3:]
		end := strings.IndexByte(auth, '/')
		if end < 0 {
			end = len(auth)
		}
		if at := strings.LastIndexByte(auth[:end], '@'); at >= 0 {
			s = s[:i+3] + auth[at+1:]
		}
	}
	return s
}
