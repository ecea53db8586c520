package jobdef

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSelection(t *testing.T) {
	tests := []struct {
		in   string
		want Selection
		err  string
	}{
		{"vc1", Selection{Source: "vc1"}, ""},
		{"vc1=web*", Selection{Source: "vc1", Pattern: "web*"}, ""},
		{"vc1=name:web*", Selection{Source: "vc1", Pattern: "web*"}, ""},
		{"vc1=name:db-1", Selection{Source: "vc1", Pattern: "db-1"}, ""},
		{"vc1=folder:/DC0/vm/prod", Selection{Source: "vc1", Folder: "/DC0/vm/prod"}, ""},
		{"vc1=folder:/DC0/vm/", Selection{Source: "vc1", Folder: "/DC0/vm/"}, ""},
		{"vc1=folder:/DC0/vm", Selection{Source: "vc1", Folder: "/DC0/vm"}, ""},
		{"vc1=tag:gold", Selection{Source: "vc1", Tag: "gold"}, ""},
		{"vc1=tag:tier/gold", Selection{Source: "vc1", Tag: "tier/gold"}, ""},
		{"vc1=tag:tier gold", Selection{Source: "vc1", Tag: "tier gold"}, ""},
		{"=web*", Selection{}, "without a source"},
		{"", Selection{}, "without a source"},
		{"vc1=name:[", Selection{}, "pattern"},
		{"vc1=[", Selection{}, "pattern"},
		{"vc1=folder:DC0/vm/prod", Selection{}, "inventory path"},
		{"vc1=folder:/DC0/host/prod", Selection{}, "inventory path"},
		{"vc1=folder:/DC0", Selection{}, "inventory path"},
		{"vc1=folder:/DC0/vm/../x", Selection{}, "inventory path"},
		{"vc1=folder:/DC0//vm", Selection{}, "inventory path"},
		{"vc1=folder:", Selection{}, "empty selector"},
		{"vc1=tag:", Selection{}, "empty selector"},
		{"vc1=name:", Selection{}, "empty selector"},
		{"vc1=tag:/gold", Selection{}, "CATEGORY/NAME"},
		{"vc1=tag:tier/", Selection{}, "CATEGORY/NAME"},
		{"vc1=tag:a/b/c", Selection{}, "CATEGORY/NAME"},
		{"vc1=tag: ", Selection{}, "CATEGORY/NAME"},
		{"kvm=metadata:tier=gold", Selection{Source: "kvm", Metadata: "tier=gold"}, ""},
		{"kvm=metadata:backup=", Selection{Source: "kvm", Metadata: "backup="}, ""},
		{"kvm=metadata:x.y_z-1=a=b", Selection{Source: "kvm", Metadata: "x.y_z-1=a=b"}, ""},
		{"kvm=metadata:", Selection{}, "empty selector"},
		{"kvm=metadata:tier", Selection{}, "KEY=VALUE"},
		{"kvm=metadata:=gold", Selection{}, "KEY=VALUE"},
		{"kvm=metadata:1tier=gold", Selection{}, "KEY=VALUE"},
		{"kvm=metadata:a:b=gold", Selection{}, "KEY=VALUE"},
		{"kvm=metadata:a b=gold", Selection{}, "KEY=VALUE"},
	}
	for _, tc := range tests {
		got, err := ParseSelection(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSelection(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSelection(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestSelectionString(t *testing.T) {
	tests := []struct {
		sel  Selection
		want string
	}{
		{Selection{Source: "s"}, "s (every VM)"},
		{Selection{Source: "s", Pattern: "web*"}, "s=name:web*"},
		{Selection{Source: "s", Folder: "/DC0/vm/a", Pattern: "x"}, "s=name:x and folder:/DC0/vm/a"},
		{Selection{Source: "s", Tag: "gold"}, "s=tag:gold"},
		{Selection{Source: "s", Metadata: "tier=gold"}, "s=metadata:tier=gold"},
	}
	for _, tc := range tests {
		if got := tc.sel.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.sel, got, tc.want)
		}
		if tc.sel.Folder == "" || tc.sel.Pattern == "" { // a single selector reads back
			if back, err := ParseSelection(strings.TrimSuffix(tc.want, " (every VM)")); err != nil || back != tc.sel {
				t.Errorf("%q reads back as %+v, %v", tc.want, back, err)
			}
		}
	}
}

// A definition's selections are checked by Validate, naming the entry.
func TestValidateSelection(t *testing.T) {
	for _, tc := range []struct {
		sel, field string
	}{
		{`{"source":""}`, "definition.select[0].source"},
		{`{"source":"vc","folder":"prod"}`, "definition.select[0]"},
		{`{"source":"vc","tag":"a/"}`, "definition.select[0]"},
		{`{"source":"vc","pattern":"["}`, "definition.select[0]"},
		{`{"source":"kvm","metadata":"tier"}`, "definition.select[0]"},
		{`{"source":"kvm","metadata":"tier=gold","tag":"gold"}`, "definition.select[0]"},
	} {
		d, err := Decode([]byte(`{"repository":"r","select":[` + tc.sel + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		err = d.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want a fault of %s", tc.sel, err, tc.field)
		}
	}
	d, err := Decode([]byte(`{"repository":"r","select":[{"source":"vc","folder":"/DC0/vm/prod","tag":"tier/gold","pattern":"web*"}]}`))
	if err != nil || d.Validate() != nil {
		t.Errorf("a valid vSphere selection: %v %v", err, d.Validate())
	}
}

func FuzzParseSelection(f *testing.F) {
	for _, s := range []string{"vc1", "vc1=web*", "vc1=folder:/DC0/vm/prod", "vc1=tag:tier/gold", "kvm=metadata:tier=gold", "=x", "vc1=name:[", "a=folder:/../vm"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelection(s)
		if err != nil {
			return
		}
		if sel.Check() != nil || sel.Source == "" {
			t.Fatalf("%q parsed into an invalid selection %+v", s, sel)
		}
	})
}
