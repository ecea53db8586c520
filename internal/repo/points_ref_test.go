package repo

import (
	"errors"
	"strings"
	"testing"
)

func TestParseLatest(t *testing.T) {
	tests := []struct {
		ref, vm string
		back    int
		ok      bool
	}{
		{"latest", "", 0, true},
		{"vm1:latest", "vm1", 0, true},
		{"web:01:latest", "web:01", 0, true},
		{"latest~2", "", 2, true},
		{"vm1:latest~1", "vm1", 1, true},
		{"vm1:latest~0", "vm1", 0, true},
		{"abc123", "", 0, false},
		{"latestx", "", 0, false},
		{"vm1:latestx", "", 0, false},
		{"vm1:latest~", "", 0, false},
		{"vm1:latest~-1", "", 0, false},
		{"vm1:latest~+1", "", 0, false},
		{"vm1:latest~1x", "", 0, false},
		{"vm1:latest~99999999999", "", 0, false},
		{"vm1latest~1", "", 0, false},
	}
	for _, tt := range tests {
		if vm, back, ok := ParseLatest(tt.ref); vm != tt.vm || back != tt.back || ok != tt.ok {
			t.Errorf("ParseLatest(%q) = %q, %d, %v; want %q, %d, %v", tt.ref, vm, back, ok, tt.vm, tt.back, tt.ok)
		}
	}
}

func TestMatchPrefix(t *testing.T) {
	ids := []string{"a1b2c3", "a1ff00", "b00000", "b00000"} // an ID in two repositories counts once
	tests := []struct {
		ref, want string
		err       error
		msg       string
	}{
		{ref: "a1b", want: "a1b2c3"},
		{ref: "a1b2c3", want: "a1b2c3"},
		{ref: "b0", want: "b00000"},
		{ref: "a1", err: ErrAmbiguous, msg: "a1 matches 2 points (a1b2c3, a1ff00)"},
		{ref: "c", err: ErrPointNotFound},
		{ref: "", err: ErrPointNotFound},
		{ref: "a1b2c3d", err: ErrPointNotFound},
	}
	for _, tt := range tests {
		got, err := MatchPrefix(tt.ref, ids)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) || !strings.Contains(errString(err), tt.msg) {
			t.Errorf("MatchPrefix(%q) = %q, %v; want %q, %v (%q)", tt.ref, got, err, tt.want, tt.err, tt.msg)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
