package main

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
)

func TestApplyFormats(t *testing.T) {
	start := `{"vms":[{"name":"a","disks":["/a.img","/b.qcow2"]}],"format":"raw",
		"disk_formats":{"/c.vmdk":"vmdk"},"recorded_formats":{"/a.img":"raw","/s.img":"raw"}}`
	tests := []struct {
		name  string
		specs []string
		vms   []string // --vm, if given
		want  string
		usage bool
	}{
		{name: "job-wide", specs: []string{"qcow2"},
			want: `{"disk_formats":{"/c.vmdk":"vmdk"},"format":"qcow2","recorded_formats":{"/a.img":"raw","/s.img":"raw"},"vms":[{"disks":["/a.img","/b.qcow2"],"name":"a"}]}`},
		{name: "job-wide auto forgets recorded", specs: []string{"auto"},
			want: `{"disk_formats":{"/c.vmdk":"vmdk"},"vms":[{"disks":["/a.img","/b.qcow2"],"name":"a"}]}`},
		{name: "one disk, path with =", specs: []string{"/x=y.img=raw"},
			want: `{"disk_formats":{"/c.vmdk":"vmdk","/x=y.img":"raw"},"format":"raw","recorded_formats":{"/a.img":"raw","/s.img":"raw"},"vms":[{"disks":["/a.img","/b.qcow2"],"name":"a"}]}`},
		{name: "one disk auto", specs: []string{"/c.vmdk=auto", "/a.img=auto"},
			want: `{"format":"raw","recorded_formats":{"/s.img":"raw"},"vms":[{"disks":["/a.img","/b.qcow2"],"name":"a"}]}`},
		{name: "dropped disk forgets its recorded format", vms: []string{"a=/b.qcow2"},
			want: `{"disk_formats":{"/c.vmdk":"vmdk"},"format":"raw","recorded_formats":{"/s.img":"raw"},"vms":[{"name":"a","disks":["/b.qcow2"]}]}`},
		{name: "bad format", specs: []string{"vhdx"}, usage: true},
		{name: "bad disk format", specs: []string{"/a.img=qcow"}, usage: true},
		{name: "no disk", specs: []string{"=raw"}, usage: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def, err := jobdef.Parse([]byte(start))
			if err != nil {
				t.Fatal(err)
			}
			f := jobFlags{formats: tc.specs, vms: tc.vms}
			err = f.applyFields(&def, func(n string) bool {
				return (n == "format" && tc.specs != nil) || (n == "vm" && tc.vms != nil)
			})
			if tc.usage {
				var ue usageError
				if !errors.As(err, &ue) {
					t.Fatalf("apply = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(def)
			var a, b any
			_ = json.Unmarshal(got, &a)
			_ = json.Unmarshal([]byte(tc.want), &b)
			ga, _ := json.Marshal(a)
			gb, _ := json.Marshal(b)
			if string(ga) != string(gb) {
				t.Errorf("definition\n%s\nwant\n%s", ga, gb)
			}
		})
	}
}
