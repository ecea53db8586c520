package taskproto

import (
	"encoding/json"
	"strings"
	"testing"
)

func validSpec() Spec {
	return Spec{TaskID: 1, Attempt: 1, SessionID: 1, Kind: KindBackup, VM: "vm1", Source: "/a.img",
		Repository: Repository{Name: "r", URL: "https://h:1"}, MoverSession: strings.Repeat("a", 32), PointID: "p"}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Spec)
		err  string
	}{
		{"backup", func(*Spec) {}, ""},
		{"restore", func(s *Spec) {
			s.Kind, s.Source, s.MoverSession, s.PointID, s.Target, s.Previous = KindRestore, "", "", "", "/out.img", json.RawMessage(`{}`)
		}, ""},
		{"no id", func(s *Spec) { s.TaskID = 0 }, "missing task id"},
		{"no attempt", func(s *Spec) { s.Attempt = 0 }, "missing task id"},
		{"kind", func(s *Spec) { s.Kind = "format-disk" }, "unknown kind"},
		{"disk", func(s *Spec) { s.Disk = -1 }, "disk -1"},
		{"repository", func(s *Spec) { s.Repository.URL = "" }, "no repository"},
		{"backup without session", func(s *Spec) { s.MoverSession = "" }, "backup without"},
		{"restore without target", func(s *Spec) { s.Kind, s.Previous = KindRestore, json.RawMessage(`{}`) }, "restore without"},
	}
	for _, tc := range tests {
		s := validSpec()
		tc.edit(&s)
		err := s.Validate()
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
}

// FuzzSpec: whatever the server sends, decoding and validating a spec
// never panics, and a spec that validates survives a round trip.
func FuzzSpec(f *testing.F) {
	b, _ := json.Marshal(validSpec())
	f.Add(b)
	f.Add([]byte(`{"task_id":1,"attempt":1,"kind":"restore","disk":-1}`))
	f.Add([]byte(`{"previous":[1,2,3],"throttle":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Spec
		if json.Unmarshal(data, &s) != nil || s.Validate() != nil {
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var again Spec
		if err := json.Unmarshal(out, &again); err != nil || again.Validate() != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
