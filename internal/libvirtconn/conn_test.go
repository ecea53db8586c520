package libvirtconn

import (
	"errors"
	"strings"
	"testing"
)

func TestSocket(t *testing.T) {
	tests := []struct{ uri, socket, inErr string }{
		{uri: "qemu:///system", socket: DefaultSocket},
		{uri: "qemu+unix:///system", socket: DefaultSocket},
		{uri: "qemu+unix:///system?socket=/tmp/s", socket: "/tmp/s"},
		{uri: "qemu+ssh://root@kvm1/system", socket: DefaultSocket},
		{uri: "qemu+ssh://root@kvm1/system?socket=/x/s", socket: "/x/s"},
		{uri: "qemu:///session", inErr: "only the local"},
		{uri: "xen:///system", inErr: "only qemu:///system"},
		{uri: "qemu:///system?x=1", inErr: "unexpected query"},
		{uri: "%zz", inErr: "bad URI"},
	}
	for _, tc := range tests {
		sock, err := Socket(tc.uri)
		switch {
		case tc.inErr != "" && (err == nil || !strings.Contains(err.Error(), tc.inErr) || !errors.Is(err, ErrUnsupportedURI)):
			t.Errorf("%s: error %v, want %q", tc.uri, err, tc.inErr)
		case tc.inErr == "" && (err != nil || sock != tc.socket):
			t.Errorf("%s: socket %q %v, want %q", tc.uri, sock, err, tc.socket)
		}
		if err != nil && strings.Contains(err.Error(), "root@") {
			t.Errorf("%s: error names the user: %v", tc.uri, err)
		}
	}
}

func TestParseSSHURI(t *testing.T) {
	tests := []struct {
		uri   string
		want  sshTarget
		sock  string
		inErr string
	}{
		{uri: "qemu+ssh://alice@kvm1/system", want: sshTarget{user: "alice", addr: "kvm1:22"}, sock: DefaultSocket},
		{uri: "qemu+ssh://kvm1:2222/system", want: sshTarget{addr: "kvm1:2222"}, sock: DefaultSocket},
		{uri: "QEMU+SSH://root@[fd00::1]:2022/system", want: sshTarget{user: "root", addr: "[fd00::1]:2022"}, sock: DefaultSocket},
		{uri: "qemu+ssh://root@127.0.0.1:2022/system?socket=/t/libvirt-sock&keyfile=/k/id&known_hosts=/k/kh",
			want: sshTarget{user: "root", addr: "127.0.0.1:2022", keyFile: "/k/id", knownHosts: "/k/kh"}, sock: "/t/libvirt-sock"},
		{uri: "qemu+ssh://root@kvm1/system?no_verify=0&known_hosts_verify=normal", want: sshTarget{user: "root", addr: "kvm1:22"}, sock: DefaultSocket},
		{uri: "qemu+ssh://root@kvm1/system?no_verify=1", inErr: "always checks the host key"},
		{uri: "qemu+ssh://root@kvm1/system?known_hosts_verify=ignore", inErr: "always checks the host key"},
		{uri: "qemu+ssh://root@kvm1/system?command=/bin/sh", inErr: "parameter command is not supported"},
		{uri: "qemu+ssh://root:hunter2@kvm1/system", inErr: "a password does not go in the URI"},
		{uri: "qemu+ssh:///system", inErr: "no host"},
		{uri: "qemu+ssh://root@kvm1/session", inErr: "only the /system daemon"},
	}
	for _, tc := range tests {
		ep, err := parseURI(tc.uri)
		switch {
		case tc.inErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.inErr) || !errors.Is(err, ErrUnsupportedURI) {
				t.Errorf("%s: error %v, want %q", tc.uri, err, tc.inErr)
			}
			if err != nil && (strings.Contains(err.Error(), "root") || strings.Contains(err.Error(), "hunter2")) {
				t.Errorf("%s: error names the user or password: %v", tc.uri, err)
			}
		case err != nil || ep.ssh == nil || *ep.ssh != tc.want || ep.socket != tc.sock:
			t.Errorf("%s: %+v %v %v, want %+v %s", tc.uri, ep, ep.ssh, err, tc.want, tc.sock)
		}
		if tc.inErr == "" && !Remote(tc.uri) {
			t.Errorf("%s: not remote", tc.uri)
		}
	}
	if Remote("qemu:///system") || Remote("qemu+unix:///system?socket=/s") {
		t.Error("a local URI is remote")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"qemu+ssh://alice@kvm1/system":                       "qemu+ssh://kvm1/system",
		"qemu+ssh://alice:secret@kvm1:2222/system?socket=/s": "qemu+ssh://kvm1:2222/system?socket=/s",
		"qemu:///system":                                     "qemu:///system",
		"%zz":                                                "(bad URI)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/tmp/holdfast-libvirt-ab": "'/var/tmp/holdfast-libvirt-ab'",
		"/a b/it's":                    `'/a b/it'\''s'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
