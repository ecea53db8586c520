package libvirt

import (
	"maps"
	"testing"
)

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string // nil: an error
	}{
		{`<backup tier="gold" owner="shop"/>`, map[string]string{"tier": "gold", "owner": "shop"}},
		{`<holdfast:backup xmlns:holdfast="` + MetadataNamespace + `" tier="gold"><x y="1"/>text</holdfast:backup>`, map[string]string{"tier": "gold"}},
		{`<backup xmlns="` + MetadataNamespace + `" holdfast:tier="silver" xmlns:holdfast="` + MetadataNamespace + `"/>`, map[string]string{"tier": "silver"}},
		{`<?xml version="1.0"?><!-- c --><backup empty=""/>`, map[string]string{"empty": ""}},
		{`<backup/>`, map[string]string{}},
		{``, nil},
		{`not xml`, nil},
		{`<backup tier="gold"`, nil},
		{`<backup tier=gold/>`, nil},
	}
	for _, tc := range tests {
		got, err := ParseMetadata(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%q: %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{`<backup tier="gold"/>`, `<a xmlns:h="u" h:x="1"><b/></a>`, `<`, `<a b="&amp;"/>`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		md, err := ParseMetadata(s)
		if err == nil && md == nil {
			t.Fatalf("%q: no error and no metadata", s)
		}
	})
}
