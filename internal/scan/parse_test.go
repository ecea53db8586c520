package scan

import (
	"bytes"
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/textsafe"
	"strings"
	"testing"
	"unicode/utf8"
)

var parseTargets = []Target{{Name: "disk0-p1", Root: "/m/vm/disk0-p1"}, {Name: "disk0-p10", Root: "/m/vm/disk0-p10"}, {Name: "root", Root: "/m/vm/root"}}

func TestParseClamscan(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []Finding
	}{
		{"empty", "", nil},
		{"one", "/m/vm/disk0-p1/eicar.com: Eicar-Test FOUND\n", []Finding{{"disk0-p1", "/eicar.com", "Eicar-Test", ""}}},
		{"longest root", "/m/vm/disk0-p10/a: S FOUND\n/m/vm/root/b c: T FOUND", []Finding{{"disk0-p10", "/a", "S", ""}, {"root", "/b c", "T", ""}}},
		{"colon space in name", "/m/vm/root/a: b: c: Sig FOUND\n", []Finding{{"root", "/a: b: c", "Sig", ""}}},
		{"newline in name", "/m/vm/root/we: ird\nname.txt: Sig FOUND\n/m/vm/root/x: S2 FOUND\n",
			[]Finding{{"root", "/we: ird\nname.txt", "Sig", ""}, {"root", "/x", "S2", ""}}},
		{"name ending FOUND", "/m/vm/root/a FOUND\nb: Sig FOUND\n", []Finding{{"root", "/a FOUND\nb", "Sig", ""}}},
		{"garbage before and between", "LibClamAV Warning: x\n/m/vm/root/a: Sig FOUND\n/m/vm/root/b: Access denied\n",
			[]Finding{{"root", "/a", "Sig", ""}}},
		{"other root", "/etc/passwd: Sig FOUND\n", nil},
		{"root itself", "/m/vm/root: Sig FOUND\n", nil},
		{"no newline at end", "/m/vm/root/a: Sig FOUND", []Finding{{"root", "/a", "Sig", ""}}},
		{"invalid utf-8", "/m/vm/root/\xff\xfe: Sig FOUND\n", []Finding{{"root", "/\xff\xfe", "Sig", ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := parseClamscan(strings.NewReader(tc.out), parseTargets)
			if err != nil || n != len(tc.want) || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %q (%d) %v, want %q", got, n, err, tc.want)
			}
		})
	}
}

func TestParseYara(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []Finding
	}{
		{"empty", "", nil},
		{"one", "eicar /m/vm/root/eicar.com\n", []Finding{{"root", "/eicar.com", "eicar", ""}}},
		{"spaces and newline in name", "eicar /m/vm/root/we ird\nname.txt\nrule2 /m/vm/disk0-p1/x\n",
			[]Finding{{"root", "/we ird\nname.txt", "eicar", ""}, {"disk0-p1", "/x", "rule2", ""}}},
		{"not an identifier", "1bad /m/vm/root/x\nwarning: slow\n", nil},
		{"other root", "eicar /tmp/x\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := parseYara(strings.NewReader(tc.out), parseTargets)
			if err != nil || n != len(tc.want) || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %q (%d) %v, want %q", got, n, err, tc.want)
			}
		})
	}
}

// TestParseBounded: a huge record and a flood of findings stay bounded.
func TestParseBounded(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("/m/vm/root/" + strings.Repeat("a", 1<<20) + ": Sig FOUND\n")
	for i := range MaxFindings + 10 {
		fmt.Fprintf(&b, "/m/vm/root/f%d: Sig FOUND\n", i)
	}
	got, n, err := parseClamscan(&b, parseTargets)
	if err != nil || n != MaxFindings+10 || len(got) != MaxFindings {
		t.Fatalf("%d findings kept of %d: %v", len(got), n, err)
	}
}

func checkFindings(t *testing.T, got []Finding, n int) {
	if n < len(got) || len(got) > MaxFindings {
		t.Fatalf("%d findings, count %d", len(got), n)
	}
	names := map[string]bool{}
	for _, tg := range parseTargets {
		names[tg.Name] = true
	}
	for _, f := range got {
		if !names[f.Filesystem] || !strings.HasPrefix(f.Path, "/") || len(f.Path) > maxRecord {
			t.Fatalf("bad finding %+v", f)
		}
		if e := textsafe.Escape(f.Path); strings.ContainsAny(e, "\n\r\x1b") || !utf8.ValidString(e) {
			t.Fatalf("escape of %q = %q", f.Path, e)
		}
	}
}

func FuzzParseClamscan(f *testing.F) {
	f.Add([]byte("/m/vm/root/a: Sig FOUND\n/m/vm/disk0-p1/b\nc: S FOUND"))
	f.Add([]byte("/m/vm/root/a: b: Sig FOUND\nLibClamAV Error\n"))
	f.Add([]byte("/m/vm/root\n: FOUND"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, n, err := parseClamscan(bytes.NewReader(b), parseTargets)
		if err != nil {
			t.Fatal(err)
		}
		checkFindings(t, got, n)
	})
}

func FuzzParseYara(f *testing.F) {
	f.Add([]byte("eicar /m/vm/root/a\nb\nr2 /m/vm/disk0-p10/x y\n"))
	f.Add([]byte("error scanning x\n_ /m/vm/root/"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, n, err := parseYara(bytes.NewReader(b), parseTargets)
		if err != nil {
			t.Fatal(err)
		}
		checkFindings(t, got, n)
	})
}
