package jobdef

import "testing"

// TestValidateScanAfter: the scan options name the faulty field.
func TestValidateScanAfter(t *testing.T) {
	for _, tc := range []struct {
		scan, field, msg string // field "": valid
	}{
		{`{}`, "", ""},
		{`{"engine":"clamscan","clamav_db":"/var/lib/clamav"}`, "", ""},
		{`{"engine":"yara","yara_rules":"/etc/holdfast/eicar.yar"}`, "", ""},
		{`{"engine":"sophos"}`, "definition.scan_after.engine", `"sophos"`},
		{`{"engine":"yara"}`, "definition.scan_after.yara_rules", "needs a rules file"},
		{`{"engine":"yara","yara_rules":"rules.yar"}`, "definition.scan_after.yara_rules", "absolute path"},
		{`{"engine":"yara","yara_rules":"/r.yar","clamav_db":"/db"}`, "definition.scan_after.clamav_db", "with engine yara"},
		{`{"clamav_db":"db"}`, "definition.scan_after.clamav_db", "absolute path"},
		{`{"yara_rules":"/r.yar"}`, "definition.scan_after.yara_rules", "with engine clamscan"},
		{`{"engine":"clamscan","rules":"/r"}`, "definition", `unknown field "rules"`},
	} {
		def := `{` + okVMs + `,"scan_after":` + tc.scan + `}`
		d, err := Decode([]byte(def))
		if err == nil {
			err = d.Validate()
		}
		checkField(t, def, err, tc.field, tc.msg)
	}
	if e := (&ScanAfter{}).EngineName(); e != ScanClamScan {
		t.Fatalf("default engine %q", e)
	}
}
