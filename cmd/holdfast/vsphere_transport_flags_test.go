package main

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseDatastorePaths(t *testing.T) {
	tests := []struct {
		in        []string
		want      map[string]string
		wantInErr string
	}{
		{in: nil, want: map[string]string{}},
		{in: []string{"LocalDS_0=/mnt/ds0", "nfs ds=/mnt/nfs ds/", "a=/mnt/x=y"},
			want: map[string]string{"LocalDS_0": "/mnt/ds0", "nfs ds": "/mnt/nfs ds", "a": "/mnt/x=y"}},
		{in: []string{"ds=/mnt/a/../b"}, want: map[string]string{"ds": "/mnt/b"}},
		{in: []string{"/mnt/ds0"}, wantInErr: "want NAME=DIR"},
		{in: []string{"=/mnt/ds0"}, wantInErr: "want NAME=DIR"},
		{in: []string{"ds="}, wantInErr: "want NAME=DIR"},
		{in: []string{"ds=mnt/ds0"}, wantInErr: "absolute"},
		{in: []string{"ds=/a", "ds=/b"}, wantInErr: `"ds" given twice`},
	}
	for _, tt := range tests {
		got, err := parseDatastorePaths(tt.in)
		if tt.wantInErr != "" {
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) || !errors.As(err, &ue) {
				t.Errorf("parseDatastorePaths(%q) = %v, %v; want a usage error containing %q", tt.in, got, err, tt.wantInErr)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tt.want) {
			t.Errorf("parseDatastorePaths(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
