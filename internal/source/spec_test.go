package source

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	direct := []Transport{TransportDirect}
	nbd, nbdTLS := []Transport{TransportNBD}, []Transport{TransportNBDTLS}
	vm := []Transport{TransportDirect, TransportHotAdd, TransportNBD}
	hotadd := []Transport{TransportHotAdd}
	tests := []struct {
		spec       string
		kind       Kind
		path       string
		key        string
		transports []Transport
		redacted   string // "": the spec itself
		wholeVM    bool
	}{
		{spec: "/images/../images/vm1.img", kind: KindFile, path: "/images/../images/vm1.img", key: "/images/vm1.img", transports: direct},
		{spec: "rel/a.img", kind: KindFile, path: "rel/a.img", key: "rel/a.img", transports: direct},
		{spec: "/var/lib/a:b.img", kind: KindFile, path: "/var/lib/a:b.img", key: "/var/lib/a:b.img", transports: direct},
		{spec: "a:b.img", kind: KindFile, path: "a:b.img", key: "a:b.img", transports: direct},
		{spec: "/a/b://c.img", kind: KindFile, path: "/a/b://c.img", key: "/a/b:/c.img", transports: direct},
		{spec: "file:///var/lib/my%20vm/a%23b.img", kind: KindFile, path: "/var/lib/my vm/a#b.img", key: "/var/lib/my vm/a#b.img", transports: direct},
		{spec: "FILE:///a.img", kind: KindFile, path: "/a.img", key: "/a.img", transports: direct},
		{spec: "file://localhost/images/x/../a.img", kind: KindFile, path: "/images/x/../a.img", key: "/images/a.img", transports: direct},
		{spec: "nbd://10.0.0.5:10809/disk0", kind: KindNBD, key: "nbd://10.0.0.5:10809", transports: nbd},
		{spec: "NBD://h/x", kind: KindNBD, key: "nbd://h", transports: nbd},
		{spec: "nbds://host/x", kind: KindNBD, key: "nbds://host", transports: nbdTLS},
		{spec: "nbd://[::1]:10809/x", kind: KindNBD, key: "nbd://[::1]:10809", transports: nbd},
		{spec: "nbd+unix:///disk?socket=/run/vm1/nbd.sock", kind: KindNBD, path: "/run/vm1/nbd.sock", key: "nbd+unix:///run/vm1/nbd.sock", transports: nbd},
		// nbds+unix is NBD over TLS: it was read with "direct" by mistake
		{spec: "nbds+unix:///disk?socket=/run/vm1/nbd.sock", kind: KindNBD, path: "/run/vm1/nbd.sock", key: "nbds+unix:///run/vm1/nbd.sock", transports: nbdTLS},
		{spec: "nbd://user:hunter2@h/x", kind: KindNBD, key: "nbd://h", transports: nbd, redacted: "nbd://h/x"},
		{spec: "qemu:///run/vm/qmp.sock", kind: KindQEMU, path: "/run/vm/qmp.sock", key: "qemu:///run/vm/qmp.sock", transports: vm, wholeVM: true},
		{spec: "qemu:///run/vm//./qmp.sock", kind: KindQEMU, path: "/run/vm//./qmp.sock", key: "qemu:///run/vm/qmp.sock", transports: vm, wholeVM: true},
		{spec: "qemu:///run/my%20vm/qmp.sock", kind: KindQEMU, path: "/run/my%20vm/qmp.sock", key: "qemu:///run/my%20vm/qmp.sock", transports: vm, wholeVM: true},
		{spec: "vsphere://admin@vc.example:8443/DC0/vm/Prod/web%201", kind: KindVSphere, path: "/DC0/vm/Prod/web 1",
			key: "vsphere://vc.example:8443", transports: vm, wholeVM: true, redacted: "vsphere://vc.example:8443/DC0/vm/Prod/web%201"},
		{spec: "vsphere://administrator%40vsphere.local@VC/DC0/vm/DC0_H0_VM0", kind: KindVSphere, path: "/DC0/vm/DC0_H0_VM0",
			key: "vsphere://vc", transports: vm, wholeVM: true, redacted: "vsphere://VC/DC0/vm/DC0_H0_VM0"},
		{spec: "libvirt:///web%201", kind: KindLibvirt, path: "web 1", key: "libvirt:///web 1", transports: hotadd, wholeVM: true},
		{spec: "libvirt+ssh://root@KVM1/db", kind: KindLibvirt, path: "db", key: "libvirt+ssh://kvm1/db", transports: hotadd,
			wholeVM: true, redacted: "libvirt+ssh://KVM1/db"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.redacted
			if want == "" {
				want = tc.spec
			}
			if s.Kind != tc.kind || s.Path != tc.path || s.ReachKey() != tc.key || s.String() != want ||
				s.WholeVM() != tc.wholeVM || s.Raw() != tc.spec || !reflect.DeepEqual(s.Transports(), tc.transports) {
				t.Errorf("Parse = kind %s path %q key %q redacted %q wholeVM %v transports %v", s.Kind, s.Path,
					s.ReachKey(), s.String(), s.WholeVM(), s.Transports())
			}
			if s.IsFile() != (tc.kind == KindFile) || s.TLS() != (tc.transports[0] == TransportNBDTLS) {
				t.Errorf("IsFile %v TLS %v", s.IsFile(), s.TLS())
			}
		})
	}
}

// TestParseRefuses: hostile and malformed specs are refused, with errors
// that wrap ErrSpec and never quote a secret.
func TestParseRefuses(t *testing.T) {
	tests := []struct {
		spec, inErr string
		scheme      bool // wraps ErrScheme
	}{
		{"", "empty", false},
		{strings.Repeat("a", maxSpecLen+1), "longer than", false},
		{"/images/a\x00.img", "control character", false},
		{"/images/a\n.img", "control character", false},
		{"nbd://h/x\r\nInjected: yes", "control character", false},
		{"ftp://user:hunter2@h/x", "unsupported source scheme", true},
		{"vsphere+x://admin:hunter2@vc/dc/vm?token=hunter2", "unsupported source scheme", true},
		{"vsphere://admin:hunter2@vc/dc/vm/a", "password does not go in the URL", false},
		{"vsphere://vc/dc/vm/a", "want vsphere://USER@HOST", false},
		{"vsphere://admin@vc/dc/host/a", "want vsphere://USER@HOST", false},
		{"vsphere://admin@vc/dc/vm", "want vsphere://USER@HOST", false},
		{"vsphere://admin@vc/dc/vm//a", "want vsphere://USER@HOST", false},
		{"vsphere://admin@vc/dc/vm/../a", "want vsphere://USER@HOST", false},
		{"vsphere://admin@vc/dc/vm/a?token=hunter2", "unexpected query", false},
		{"libvirt:///", "want libvirt:///DOMAIN", false},
		{"libvirt:///a/b", "want libvirt:///DOMAIN", false},
		{"libvirt://host/a", "is the local host", false},
		{"libvirt:///a?socket=x", "unexpected query", false},
		{"libvirt+ssh://host/a", "want libvirt:///DOMAIN", false},
		{"libvirt+ssh://root:hunter2@host/a", "password does not go", false},
		{"file://otherhost/a.img", "remote host", false},
		{"file:relative.img", "absolute file:///path", false},
		{"file:///a.img?x=1", "unexpected user, query or fragment", false},
		{"file:///a.img#frag", "unexpected user, query or fragment", false},
		{"file://me:hunter2@localhost/a.img", "unexpected user", false},
		{"file:///bad%zz", "bad URL", false},
		{"nbd:///x", "missing host", false},
		{"nbd:x", "missing host", false},
		{"nbd://h:99999/x", "bad port", false},
		{"nbd://h/x?password=hunter2", "unexpected query", false},
		{"nbd://u:hunter2@h:0/x", "bad port", false},
		{"nbd+unix:///x", "missing socket", false},
		{"nbd+unix://host/x?socket=/s", "must not name a host", false},
		{"nbds+unix:///x?socket=/s&psk=hunter2", "unknown parameter", false},
		{"nbd://h/" + strings.Repeat("e", 5000), "longer than", false},
		{"qemu://relative.sock", "the whole VM", false},
		{"qemu:/run/qmp.sock", "qemu:///ABSOLUTE", false},
		{"qemu:", "qemu:///ABSOLUTE", false},
		{"qemu:///run/qmp.sock?x=1", "qemu:///ABSOLUTE", false},
		{"QEMU://h/qmp.sock", "qemu:///ABSOLUTE", false},
	}
	for _, tc := range tests {
		name := tc.spec
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.spec)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrSpec) || errors.Is(err, ErrScheme) != tc.scheme || !strings.Contains(err.Error(), tc.inErr) {
				t.Errorf("error %v, want ErrSpec (scheme %v) and %q", err, tc.scheme, tc.inErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error quotes a secret: %v", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"/images/a.img":                             "/images/a.img",
		"nbd://u:hunter2@h/x":                       "nbd://h/x",
		"nbd+unix:///x?socket=/run/s":               "nbd+unix:///x?socket=/run/s",
		"nbds+unix:///x?socket=/s&psk=hunter2":      "nbds+unix:///x?psk=xxxxx&socket=%2Fs",
		"vsphere://admin:hunter2@vc/dc?tok=hunter2": "vsphere://vc/dc?tok=xxxxx",
		"nbd://u:hunter2@h/x#hunter2":               "nbd://h/x",
		"ftp://u:hunter2@h:1/%zz":                   "ftp://h:1/%zz",
		"nbd://u:hunter2@h/%zz?k=hunter2":           "nbd://h/%zz?xxxxx",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTransportsFor(t *testing.T) {
	tests := []struct {
		spec string
		pref Transport
		want []Transport
	}{
		{"/a.img", "", []Transport{TransportDirect}},
		{"/a.img", TransportAuto, []Transport{TransportDirect}},
		{"/a.img", TransportDirect, []Transport{TransportDirect}},
		{"/a.img", TransportNBD, nil},
		{"nbd://h/x", TransportNBD, []Transport{TransportNBD}},
		{"nbd://h/x", TransportHotAdd, nil},
		{"nbds+unix:///x?socket=/s", TransportAuto, []Transport{TransportNBDTLS}},
		{"nbds+unix:///x?socket=/s", TransportDirect, nil},
		{"qemu:///run/qmp.sock", TransportAuto, []Transport{TransportDirect, TransportHotAdd, TransportNBD}},
		{"qemu:///run/qmp.sock", TransportHotAdd, []Transport{TransportHotAdd}},
		{"qemu:///run/qmp.sock", TransportNBDTLS, nil},
	}
	for _, tc := range tests {
		s, err := Parse(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.TransportsFor(tc.pref); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s with %q: %v, want %v", tc.spec, tc.pref, got, tc.want)
		}
	}
}

// TestTransportsCopied: a caller cannot change the table through the
// slice it gets.
func TestTransportsCopied(t *testing.T) {
	s, _ := Parse("qemu:///run/qmp.sock")
	s.Transports()[0] = TransportNBDTLS
	if s.Transports()[0] != TransportDirect {
		t.Fatal("Transports shares the table")
	}
}

func TestParseTransport(t *testing.T) {
	for _, name := range []string{"direct", "hotadd", "nbd", "nbd+tls"} {
		if tr, err := ParseTransport(name); err != nil || string(tr) != name {
			t.Errorf("ParseTransport(%q) = %q, %v", name, tr, err)
		}
	}
	for _, name := range []string{"", "auto", "NBD", "san", "nbd+tls "} {
		if _, err := ParseTransport(name); err == nil || !strings.Contains(err.Error(), "direct, hotadd, nbd or nbd+tls") {
			t.Errorf("ParseTransport(%q): %v", name, err)
		}
	}
}

func TestParsePreference(t *testing.T) {
	for in, want := range map[string]Transport{"": TransportAuto, "auto": TransportAuto, "direct": TransportDirect,
		"hotadd": TransportHotAdd, "nbd": TransportNBD} {
		if got, err := ParsePreference(in); err != nil || got != want {
			t.Errorf("ParsePreference(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"nbd+tls", "san", "Auto"} {
		if _, err := ParsePreference(in); err == nil || !strings.Contains(err.Error(), "auto, direct, hotadd or nbd") {
			t.Errorf("ParsePreference(%q): %v", in, err)
		}
	}
}

// FuzzParse: Parse never panics, accepted specs are consistent (a kind,
// transports, a key; parsing the raw form again gives the same), and the
// redacted form never holds the password of a URL.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{"/images/a.img", "rel.img", "file:///a%20b.img", "file://localhost/a",
		"nbd://h:10809/x", "nbds://u:pw@h/x", "nbd+unix:///x?socket=/s", "nbds+unix:///x?socket=/s&k=v",
		"qemu:///run/qmp.sock", "qemu://x", "ftp://u:pw@h", "a:b", "::", "nbd://[::1]/x#f", "\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrSpec) {
				t.Fatalf("error %v does not wrap ErrSpec", err)
			}
			return
		}
		if s.Kind == "" || len(s.Transports()) == 0 || s.ReachKey() == "" || s.Raw() != in {
			t.Fatalf("%q: incomplete spec %+v", in, s)
		}
		again, err := Parse(s.Raw())
		if err != nil || again.ReachKey() != s.ReachKey() || again.String() != s.String() {
			t.Fatalf("%q: parse again: %v", in, err)
		}
		if s.Scheme != "" {
			if u, err := url.Parse(s.String()); err == nil && u.User != nil {
				t.Fatalf("%q: redacted form %q holds user information", in, s.String())
			}
		}
	})
}
