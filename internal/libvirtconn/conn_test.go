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
		{uri: "qemu+ssh://root@kvm1/system", inErr: "libvirt+ssh is not built"},
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

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"qemu+ssh://alice@kvm1/system": "qemu+ssh://kvm1/system",
		"qemu:///system":               "qemu:///system",
		"%zz":                          "(bad URI)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
