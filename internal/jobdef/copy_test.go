package jobdef

import "testing"

// TestValidateCopy: a copy job names its source (the job's repository)
// and another target, copies no listed VMs, takes valid VM globs and
// retention, and no other kind carries a copy.
func TestValidateCopy(t *testing.T) {
	tests := []struct {
		kind, def, field, msg string // field "": valid
	}{
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b"}}`, "", ""},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b","vms":["web-*","db1"],"newer_only":true},"retention":{"keep_last":3},"schedule_x":1}`,
			"definition", "unknown field"},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b","vms":["web-*","db1"],"newer_only":true},"retention":{"keep_last":3}}`, "", ""},
		{KindCopy, `{"copy":{"to_repository":"b"}}`, "definition.repository", "names no repository"},
		{KindCopy, `{"repository":"a"}`, "definition.copy.to_repository", "no target repository"},
		{KindCopy, `{"repository":"a","copy":{}}`, "definition.copy.to_repository", "no target repository"},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"a"}}`, "definition.copy.to_repository", "must be another"},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b","vms":["web-["]}}`, "definition.copy.vms[0]", "not a VM name glob"},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b","vms":[""]}}`, "definition.copy.vms[0]", "not a VM name glob"},
		{KindCopy, `{` + okVMs + `,"copy":{"to_repository":"b"}}`, "definition.vms", "backs up no VMs"},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b"},"maintenance":{"gc":true}}`, "definition.maintenance", "only a maintenance job"},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b"},"retention":{"keep_last":-1}}`, "definition.retention.keep_last", "negative"},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b"},"throttle":["wan: 1MiB/s"]}`, "", ""},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b"},"throttle":["any 1MiB/s"]}`, "definition.throttle", ""},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b"},"read_limit":1048576}`, "definition.read_limit", "reads no disks"},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b"},"missed":"never"}`, "definition.missed", "never"},
		{KindBackup, `{` + okVMs + `,"copy":{"to_repository":"b"}}`, "definition.copy", "only a copy job"},
		{KindMaintenance, `{"repository":"r","maintenance":{"gc":true},"copy":{"to_repository":"b"}}`, "definition.copy", "only a copy job"},
	}
	for _, tc := range tests {
		d, err := Decode([]byte(tc.def))
		if err == nil {
			err = d.ValidateKind(tc.kind)
		}
		checkField(t, tc.kind+" "+tc.def, err, tc.field, tc.msg)
	}
}

// TestCopyMatches: the VM globs choose the VMs whose points are copied;
// none copies every VM.
func TestCopyMatches(t *testing.T) {
	tests := []struct {
		vms  []string
		vm   string
		want bool
	}{
		{nil, "anything", true},
		{[]string{"web-*"}, "web-1", true},
		{[]string{"web-*"}, "db-1", false},
		{[]string{"web-*", "db-?"}, "db-1", true},
		{[]string{"db1"}, "db10", false},
	}
	for _, tc := range tests {
		if got := (Copy{VMs: tc.vms}).Matches(tc.vm); got != tc.want {
			t.Errorf("%v matches %q: %v, want %v", tc.vms, tc.vm, got, tc.want)
		}
	}
}
