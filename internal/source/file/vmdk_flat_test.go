package file

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFlatDescriptor(t *testing.T) {
	tests := []struct {
		name string
		text string
		want FlatExtent
		in   string
	}{
		{"vmfs", descriptorText("vmfs", "RW 4096 VMFS \"d-flat.vmdk\"\n"), FlatExtent{File: "d-flat.vmdk", Sectors: 4096, Writable: true}, ""},
		{"flat with offset", descriptorText("monolithicFlat", "RDONLY 20480 FLAT \"disk flat.img\" 8\n"), FlatExtent{File: "disk flat.img", Sectors: 20480, Offset: 8}, ""},
		{"sparse", descriptorText("monolithicSparse", "RW 20480 SPARSE \"s.vmdk\"\n"), FlatExtent{}, "not a flat extent"},
		{"two", descriptorText("vmfs", "RW 8 VMFS \"a\"\nRW 8 VMFS \"b\"\n"), FlatExtent{}, "2 extents"},
		{"delta", strings.Replace(descriptorText("vmfsSparse", "RW 8 VMFS \"a\"\n"), "parentCID=ffffffff", "parentCID=0badf00d", 1), FlatExtent{}, "parent"},
		{"elsewhere", descriptorText("vmfs", "RW 8 VMFS \"../a\"\n"), FlatExtent{}, "not in the descriptor's directory"},
		{"no createType", "RW 8 VMFS \"a\"\n", FlatExtent{}, "no createType"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFlatDescriptor([]byte(tc.text))
			if tc.in == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.in) {
				t.Fatalf("error %v, want %q", err, tc.in)
			}
			if tc.name == "elsewhere" && !errors.Is(err, ErrReference) {
				t.Errorf("error %v is not ErrReference", err)
			}
		})
	}
}

func FuzzParseFlatDescriptor(f *testing.F) {
	f.Add([]byte(descriptorText("vmfs", "RW 4096 VMFS \"d-flat.vmdk\"\n")))
	f.Add([]byte(descriptorText("monolithicFlat", "RW 20480 FLAT \"disk-flat.vmdk\" 0\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := ParseFlatDescriptor(data)
		if err == nil && (x.File == "" || strings.ContainsAny(x.File, "/\\\x00") || x.Sectors <= 0 || x.Offset < 0) {
			t.Fatalf("accepted %+v", x)
		}
	})
}
