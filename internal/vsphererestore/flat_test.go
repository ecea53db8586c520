package vsphererestore

import (
	"errors"
	"strings"
	"testing"
)

const simDescriptor = `# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description (2.0MiB capacity)
RW 4096 VMFS "disk1-flat.vmdk"

# The Disk Data Base
#DDB
ddb.adapterType = "lsilogic"
`

func TestParseFlatDescriptor(t *testing.T) {
	tests := []struct {
		name string
		desc string
		size int64
		want string
		err  error
		in   string
	}{
		{name: "vmfs", desc: simDescriptor, size: 2 << 20, want: "disk1-flat.vmdk"},
		{name: "flat", desc: strings.Replace(simDescriptor, "VMFS", "FLAT", 1), size: 2 << 20, want: "disk1-flat.vmdk"},
		{name: "size", desc: simDescriptor, size: 1 << 20, err: ErrMismatch},
		{name: "escape", desc: strings.Replace(simDescriptor, "disk1-flat", "../x/disk1-flat", 1), size: 2 << 20, err: ErrEscape},
		{name: "offset", desc: strings.Replace(simDescriptor, `"disk1-flat.vmdk"`, `"disk1-flat.vmdk" 8`, 1), size: 2 << 20, err: ErrMismatch},
		{name: "two extents", desc: simDescriptor + `RW 4096 VMFS "b-flat.vmdk"` + "\n", size: 4 << 20, in: "2 extents"},
		{name: "sparse extent", desc: strings.Replace(simDescriptor, "VMFS \"", "SPARSE \"", 1), size: 2 << 20, in: "not a flat extent"},
		{name: "delta", desc: strings.Replace(simDescriptor, "parentCID=ffffffff", "parentCID=1234abcd", 1), size: 2 << 20, in: "parent"},
		{name: "sparse file", desc: "KDMV\x01\x00\x00\x00", size: 2 << 20, in: "sparse VMDK"},
		{name: "not a descriptor", desc: "\x00\x01 garbage", size: 2 << 20, in: "no createType"},
		{name: "read only", desc: strings.Replace(simDescriptor, "RW 4096", "RDONLY 4096", 1), size: 2 << 20, in: "not RW"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFlatDescriptor([]byte(tc.desc), tc.size)
			if tc.err == nil && tc.in == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.in) {
				t.Fatalf("error %v, want %v containing %q", err, tc.err, tc.in)
			}
		})
	}
}

// FuzzParseFlatDescriptor: descriptor bytes come from the datastore; no
// input panics, and a name it returns stays in the directory.
func FuzzParseFlatDescriptor(f *testing.F) {
	f.Add([]byte(simDescriptor), int64(2<<20))
	f.Add([]byte(strings.Replace(simDescriptor, "RW 4096", "RW 9223372036854775807", 1)), int64(-512))
	f.Add([]byte("createType=\"vmfs\"\nencryptionKeys=\"vmware:key/list/(pair/(null/null,HMAC-SHA-256,))\"\n"), int64(512))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		name, err := parseFlatDescriptor(b, size)
		if err == nil && (name == "" || strings.ContainsAny(name, "/\\\x00") || name == ".." || name == ".") {
			t.Fatalf("accepted extent name %q", name)
		}
	})
}
