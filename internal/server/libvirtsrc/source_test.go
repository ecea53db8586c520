package libvirtsrc

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		def string
		err string // "" valid
	}{
		{`{"address":"qemu:///system"}`, ""},
		{`{"address":"qemu:///system","proxy":"kvm1-proxy"}`, ""},
		{`{"address":"qemu+unix:///system?socket=/run/x/libvirt-sock","proxy":"p.1"}`, ""},
		{`{"address":"qemu+unix:///system"}`, ""},
		{`{"address":"qemu+ssh://root@kvm1/system"}`, ""},
		{`{"address":"qemu+ssh://root@kvm1:2222/system?keyfile=/k"}`, ""},
		{`{"address":"qemu:///system","list_address":"qemu+ssh://backup@kvm1/system","proxy":"kvm1"}`, ""},
		{`{"address":"QEMU:///system"}`, ""},
		{`{}`, "address"},
		{`{"address":"qemu:///session"}`, "system daemon"},
		{`{"address":"qemu://kvm1/system"}`, "local daemon"},
		{`{"address":"qemu:///system?socket=/x"}`, "local daemon"},
		{`{"address":"qemu+unix://h/system"}`, "local socket"},
		{`{"address":"qemu+unix:///system?socket=rel"}`, "absolute"},
		{`{"address":"qemu+unix:///system?socket=/a&socket=/b"}`, "absolute"},
		{`{"address":"qemu+ssh:///system"}`, "needs a host"},
		{`{"address":"qemu+ssh://root:s3cret@kvm1/system"}`, "password"},
		{`{"address":"xen:///system"}`, "qemu, qemu+unix or qemu+ssh"},
		{`{"address":"qemu+tcp://kvm1/system"}`, "qemu, qemu+unix or qemu+ssh"},
		{`{"address":"qemu:///system#x"}`, "system daemon"},
		{`{"address":"%zz"}`, "connection URI"},
		{`{"address":"qemu:///system","proxy":"-bad"}`, "proxy"},
		{`{"address":"qemu:///system","proxy":"a/b"}`, "proxy"},
		{`{"address":"qemu:///system","list_address":"qemu:///session"}`, "list_address"},
		{`{"address":"qemu:///system","password":"x"}`, "unknown field"},
		{`[]`, "definition"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.def))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.def, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid)):
			t.Errorf("%s: %v, want an ErrInvalid with %q", tc.def, err, tc.err)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "root@")) {
			t.Errorf("%s: the error shows the user or password: %v", tc.def, err)
		}
	}
}

func TestListURI(t *testing.T) {
	d := Definition{Address: "qemu:///system"}
	if d.ListURI() != "qemu:///system" {
		t.Errorf("list URI %q", d.ListURI())
	}
	d.ListAddress = "qemu+unix:///system?socket=/s"
	if d.ListURI() != d.ListAddress {
		t.Errorf("list URI %q", d.ListURI())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"address":"qemu:///system","proxy":"p"}`))
	f.Add([]byte(`{"address":"qemu+ssh://u@h:1/system?x=y","list_address":"qemu+unix:///system?socket=/s"}`))
	f.Add([]byte(`{"address":"qemu+unix://%zz/system"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err == nil {
			if d.Address == "" || d.ListURI() == "" {
				t.Fatalf("valid definition without an address: %s", b)
			}
			return
		}
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
	})
}
