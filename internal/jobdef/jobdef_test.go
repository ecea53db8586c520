package jobdef

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const okVMs = `"vms":[{"name":"a","disks":["/a"]}],"repository":"r"`

// TestValidateMaintenance: a maintenance job names a repository and some
// work, and backs up no VMs.
func TestValidateMaintenance(t *testing.T) {
	tests := []struct {
		def, field, msg string // field "": valid
	}{
		{`{"repository":"r","maintenance":{"gc":true}}`, "", ""},
		{`{"repository":"r","maintenance":{"gc":true,"gc_grace_seconds":60,"verify":true,"read_data_percent":10}}`, "", ""},
		{`{"maintenance":{"gc":true}}`, "definition.repository", "names no repository"},
		{`{"repository":"r"}`, "definition.maintenance", "does nothing"},
		{`{"repository":"r","maintenance":{}}`, "definition.maintenance", "does nothing"},
		{`{` + okVMs + `,"maintenance":{"gc":true}}`, "definition.vms", "backs up no VMs"},
		{`{"repository":"r","maintenance":{"gc":true,"gc_grace_seconds":-1}}`, "definition.maintenance.gc_grace_seconds", "negative"},
		{`{"repository":"r","maintenance":{"verify":true,"read_data_percent":101}}`, "definition.maintenance.read_data_percent", "want 1 to 100"},
		{`{"repository":"r","maintenance":{"gc":true,"read_data_percent":10}}`, "definition.maintenance.read_data_percent", "give verify"},
		{`{"repository":"r","maintenance":{"gc":true},"missed":"never"}`, "definition.missed", "never"},
	}
	for _, tc := range tests {
		d, err := Decode([]byte(tc.def))
		if err == nil {
			err = d.ValidateKind(KindMaintenance)
		}
		checkField(t, tc.def, err, tc.field, tc.msg)
	}
	d, _ := Decode([]byte(`{"repository":"r","maintenance":{"gc":true}}`))
	checkField(t, "kind", d.ValidateKind("defrag"), "kind", "defrag")
	for pct, parts := range map[int]int{0: 0, 10: 10, 30: 3, 100: 1, 60: 1} {
		if got := (Maintenance{Verify: true, ReadDataPercent: pct}).ReadDataParts(); got != parts {
			t.Errorf("%d%%: %d parts, want %d", pct, got, parts)
		}
	}
}

// TestValidate: every refused definition names its field and wraps
// ErrInvalid.
func TestValidate(t *testing.T) {
	tests := []struct {
		def, field, msg string // field "": valid
	}{
		{`{"vms":[{"name":"a","disks":["/a.img","nbd://h/x"]}],"repository":"r"}`, "", ""},
		{`{"vms":[{"name":"a","disks":["/a.img"]}]}`, "definition.repository", "names no repository"},
		{`{"vms":[],"repository":"r"}`, "definition.vms", "lists no VMs"},
		{`{"select":[{"source":"s"}],"repository":"r"}`, "", ""},
		{`{"select":[{"pattern":"web-*"}],"repository":"r"}`, "definition.select[0].source", "without a source"},
		{`{"vms":["a"],"repository":"r"}`, "definition.vms[0].disks", "lists no disks"},
		{`{"vms":[{"name":"a","disks":[""]}],"repository":"r"}`, "definition.vms[0].disks", "empty disk"},
		{`{"vms":[{"name":"a","disks":["/a"]},{"name":"a","disks":["/b"]}],"repository":"r"}`, "definition.vms[1].name", "listed twice"},
		{`{"vms":[{"name":"a","disks":["qemu:///run/vm/qmp.sock"]}],"repository":"r"}`, "", ""},
		{`{"vms":[{"name":"a","disks":["qemu:///run/vm/qmp.sock","/b.img"]}],"repository":"r"}`, "definition.vms[0].disks", "the whole VM"},
		{`{"vms":[{"name":"a","disks":["libvirt:///web1"]}],"repository":"r"}`, "", ""},
		{`{"vms":[{"name":"a","disks":["libvirt:///web1","/b.img"]}],"repository":"r"}`, "definition.vms[0].disks", "the whole VM"},
		{`{"vms":[{"name":"a","disks":["qemu://relative.sock"]}],"repository":"r"}`, "definition.vms[0].disks", "the whole VM"},
		{`{"vms":[{"name":"a","disks":["a.img"]}],"repository":"r"}`, "definition.vms[0].disks", "relative path"},
		{`{"vms":[{"name":"a","disks":["./images/a.img"]}],"repository":"r"}`, "definition.vms[0].disks", "give an absolute path"},
		{`{"vms":[{"name":"a","disks":["nbd+unix:///x?socket=run/nbd.sock"]}],"repository":"r"}`, "definition.vms[0].disks", "relative path"},
		{`{"vms":[{"name":"a","disks":["file:///a.img","nbd+unix:///x?socket=/run/nbd.sock"]}],"repository":"r"}`, "", ""},
		{`{"vms":[{"name":"../../x","disks":["/a"]}],"repository":"r"}`, "definition.vms[0].name", "invalid VM name"},
		{`{"vms":[{"name":"a\nb","disks":["/a"]}],"repository":"r"}`, "definition.vms[0].name", "invalid VM name"},
		{`{"vms":[{"name":"","disks":["/a"]}],"repository":"r"}`, "definition.vms[0].name", "invalid VM name"},
		{`{` + okVMs + `,"retention":{"keep_last":-1}}`, "definition.retention.keep_last", "negative"},
		{`{` + okVMs + `,"retention":{"keep_last":3,"keep_daily":7,"keep_weekly":4,"keep_monthly":12,"keep_yearly":5}}`, "", ""},
		{`{` + okVMs + `,"retention":{"keep_monthly":-2}}`, "definition.retention.keep_monthly", "negative"},
		{`{` + okVMs + `,"missed":"skip"}`, "", ""},
		{`{` + okVMs + `,"missed":"run-once"}`, "", ""},
		{`{` + okVMs + `,"missed":"twice"}`, "definition.missed", `"twice"`},
		{`{` + okVMs + `,"maintenance":{"gc":true}}`, "definition.maintenance", "only a maintenance job"},
		{`{` + okVMs + `,"chunk_size":-5}`, "definition.chunk_size", "chunk size"},
		{`{` + okVMs + `,"chunk_size":1000}`, "definition.chunk_size", "chunk size"},
		{`{` + okVMs + `,"chunk_size":4194304}`, "", ""},
		{`{` + okVMs + `,"transport":"hotadd"}`, "", ""},
		{`{` + okVMs + `,"transport":"carrier-pigeon"}`, "definition.transport", "carrier-pigeon"},
		{`{` + okVMs + `,"read_limit":-1}`, "definition.read_limit", "negative"},
		{`{` + okVMs + `,"exclude_free":true,"exclude_swap":true,"exclude_paths":["/var/cache","tmp"]}`, "", ""},
		{`{` + okVMs + `,"exclude_paths":["/"]}`, "definition.exclude_paths", "below the file system's root"},
		{`{` + okVMs + `,"exclude_paths":[""]}`, "definition.exclude_paths", "below"},
		{`{` + okVMs + `,"throttle":["wan: 10.0.0.0/8 -> any 10MiB/s"]}`, "", ""},
		{`{` + okVMs + `,"throttle":["wan: 10.0.0.0/8 -> any fast"]}`, "definition.throttle", ""},
		{`{` + okVMs + `,"retries":{"count":-1}}`, "definition.retries.count", "negative retries"},
		{`{` + okVMs + `,"retries":{"wait_seconds":-1}}`, "definition.retries.wait_seconds", "negative"},
		{`{` + okVMs + `,"guest":{"policy":"ignore"}}`, "definition.guest.policy", `"ignore"`},
		{`{` + okVMs + `,"guest":{"timeout_seconds":-3}}`, "definition.guest.timeout_seconds", "negative"},
		{`{` + okVMs + `,"format":"raw"}`, "", ""},
		{`{` + okVMs + `,"format":"vhdx"}`, "definition.format", `format "vhdx"`},
		{`{` + okVMs + `,"disk_formats":{"/a":"qcow"}}`, `definition.disk_formats["/a"]`, "qcow"},
		{`{` + okVMs + `,"recorded_formats":{"/a":""}}`, `definition.recorded_formats["/a"]`, "want raw"},
		{`{` + okVMs + `,"follow_backing":true}`, "definition.follow_backing", "needs disks given as qcow2"},
		{`{` + okVMs + `,"follow_backing":true,"format":"raw"}`, "definition.follow_backing", "needs"},
		{`{` + okVMs + `,"follow_backing":true,"format":"qcow2"}`, "", ""},
	}
	for _, tc := range tests {
		d, err := Decode([]byte(tc.def))
		if err == nil {
			err = d.Validate()
		}
		checkField(t, tc.def, err, tc.field, tc.msg)
	}
}

// TestDecode: unknown keys and wrong types are refused by name; a
// compression is refused with the reason.
func TestDecode(t *testing.T) {
	tests := []struct {
		def, field, msg string
	}{
		{`{"vms":["a"],"compression":"fast"}`, "definition.compression", "the repository's"},
		{`{"compresion":"fast"}`, "definition", `unknown field "compresion"`},
		{`{"retention":{"keep":3}}`, "definition", `unknown field "keep"`},
		{`{"vms":[{"name":"a","disk":["/a"]}]}`, "definition", `unknown field "disk"`},
		{`{"chunk_size":"1MiB"}`, "definition.chunk_size", "want a int"},
		{`[1,2]`, "definition", "JSON object"},
		{`{"vms":[1]}`, "definition", ""},
	}
	for _, tc := range tests {
		_, err := Decode([]byte(tc.def))
		checkField(t, tc.def, err, tc.field, tc.msg)
		var d Definition
		err = json.Unmarshal([]byte(tc.def), &d)
		checkField(t, "Unmarshal "+tc.def, err, tc.field, tc.msg)
	}
}

// TestParseLenient: stored definitions keep working with keys an older
// version wrote.
func TestParseLenient(t *testing.T) {
	d, err := Parse([]byte(`{"vms":["a",{"name":"b","disks":["/b"]}],"repository":"r","compression":"fast"}`))
	if err != nil || len(d.VMs) != 2 || d.VMs[0].Name != "a" || d.VMs[1].Disks[0] != "/b" || d.Repository != "r" {
		t.Fatalf("Parse = %+v, %v", d, err)
	}
	if d, err := Parse(nil); err != nil || d.Repository != "" {
		t.Fatalf("Parse(nil) = %+v, %v", d, err)
	}
	if _, err := Parse([]byte(`[1]`)); err == nil {
		t.Fatal("Parse([1]) succeeded")
	}
	out, _ := json.Marshal(Definition{Repository: "r", VMs: []VM{{Name: "a", Disks: []string{"/a"}}}})
	if string(out) != `{"vms":[{"name":"a","disks":["/a"]}],"repository":"r"}` {
		t.Fatalf("encoded %s", out)
	}
}

func TestSchedules(t *testing.T) {
	for spec, msg := range map[string]string{
		"": "", "0 2 * * *": "", "daily 03:00": "", "after nightly": "", "@hourly": "",
		"0 25 * * *": "hour", "dayly 03:00": "dayly", "daily 3pm": "bad time", "after": "after which job",
	} {
		field := "schedule"
		if msg == "" {
			field = ""
		}
		checkField(t, spec, ValidateSchedule(spec), field, msg)
	}
	ok := map[string]string{"a": "after b", "b": "0 2 * * *", "c": "after gone", "d": ""}
	if err := CheckChains(ok); err != nil {
		t.Fatalf("CheckChains(%v) = %v", ok, err)
	}
	cyclic := map[string]string{"a": "after b", "b": "after c", "c": "after a", "d": "after a"}
	checkField(t, "cycle", CheckChains(cyclic), "schedule", "a → b → c → a")
	checkField(t, "self", CheckChains(map[string]string{"s": "after s"}), "schedule", "s → s")
}

func checkField(t *testing.T, what string, err error, field, msg string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return
	}
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != field || !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: error %v, want field %s with %q", what, err, field, msg)
	}
}
