package jobdef

import "testing"

// TestValidateNotify: notification rules name valid targets once and
// known results, on every job kind.
func TestValidateNotify(t *testing.T) {
	tests := []struct {
		kind, def, field, msg string // field "": valid
	}{
		{KindBackup, `{` + okVMs + `,"notify":[{"target":"ops"}]}`, "", ""},
		{KindBackup, `{` + okVMs + `,"notify":[{"target":"ops","on":["failure","success"]},{"target":"chat-1","on":["warning"]}]}`, "", ""},
		{KindBackup, `{` + okVMs + `,"notify":[{"target":""}]}`, "definition.notify[0]", "want 1 to 64"},
		{KindBackup, `{` + okVMs + `,"notify":[{"target":"-x"}]}`, "definition.notify[0]", "starting with a letter"},
		{KindBackup, `{` + okVMs + `,"notify":[{"target":"a b"}]}`, "definition.notify[0]", "want letters"},
		{KindBackup, `{` + okVMs + `,"notify":[{"target":"ops","on":["failed"]}]}`, "definition.notify[0]", `result "failed"`},
		{KindBackup, `{` + okVMs + `,"notify":[{"target":"ops","on":["success","success"]}]}`, "definition.notify[0]", "twice"},
		{KindBackup, `{` + okVMs + `,"notify":[{"target":"ops","on":[]}]}`, "definition.notify[0]", "no results"},
		{KindBackup, `{` + okVMs + `,"notify":[{"target":"ops"},{"target":"ops"}]}`, "definition.notify[1].target", "named twice"},
		{KindBackup, `{` + okVMs + `,"notify":[{"target":"ops","when":"x"}]}`, "definition", "unknown field"},
		{KindMaintenance, `{"repository":"r","maintenance":{"gc":true},"notify":[{"target":"ops","on":["bogus"]}]}`, "definition.notify[0]", "bogus"},
		{KindCopy, `{"repository":"a","copy":{"to_repository":"b"},"notify":[{"target":"ops"}]}`, "", ""},
	}
	for _, tc := range tests {
		d, err := Decode([]byte(tc.def))
		if err == nil {
			err = d.ValidateKind(tc.kind)
		}
		checkField(t, tc.kind+" "+tc.def, err, tc.field, tc.msg)
	}
}

// TestNotifySends: the default rule sends failures and warnings, never a
// cancelled session; ParseNotify reads --notify.
func TestNotifySends(t *testing.T) {
	tests := []struct {
		spec  string
		sends map[string]bool
		err   bool
	}{
		{"ops", map[string]bool{"failed": true, "warning": true, "success": false, "cancelled": false}, false},
		{"ops:success", map[string]bool{"failed": false, "warning": false, "success": true}, false},
		{"ops:failure,success", map[string]bool{"failed": true, "warning": false, "success": true}, false},
		{"ops:", nil, true},
		{"ops:fail", nil, true},
		{":failure", nil, true},
		{"o/ps", nil, true},
	}
	for _, tc := range tests {
		n, err := ParseNotify(tc.spec)
		if (err != nil) != tc.err {
			t.Errorf("ParseNotify(%q): %v", tc.spec, err)
			continue
		}
		for state, want := range tc.sends {
			if got := n.Sends(state); got != want {
				t.Errorf("%q sends %s: %v, want %v", tc.spec, state, got, want)
			}
		}
	}
	if s := (Notify{Target: "ops"}).String(); s != "ops:failure,warning" {
		t.Errorf("String: %q", s)
	}
}
