package repo

import (
	"errors"
	"strings"
	"testing"
)

func TestParseLatest(t *testing.T) {
	tests := []struct {
		ref, vm string
		ok      bool
	}{
		{"latest", "", true},
		{"vm1:latest", "vm1", true},
		{"web:01:latest", "web:01", true},
		{"abc123", "", false},
		{"latestx", "", false},
		{"vm1:latestx", "", false},
	}
	for _, tt := range tests {
		if vm, ok := ParseLatest(tt.ref); vm != tt.vm || ok != tt.ok {
			t.Errorf("ParseLatest(%q) = %q, %v; want %q, %v", tt.ref, vm, ok, tt.vm, tt.ok)
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
