package s3

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in    string
		want  Target
		inErr string
	}{
		{in: "s3://s3.example.com/backups", want: Target{Endpoint: "s3.example.com", Secure: true, Bucket: "backups"}},
		{in: "S3://h:9000/b-1/site/a/", want: Target{Endpoint: "h:9000", Secure: true, Bucket: "b-1", Prefix: "site/a"}},
		{in: "s3+http://127.0.0.1:7070/bkt/p", want: Target{Endpoint: "127.0.0.1:7070", Bucket: "bkt", Prefix: "p"}},
		{in: "s3://AKIA:hunter2@h/bkt", inErr: "keys do not go in the URL"},
		{in: "s3:///bkt", inErr: "want s3://HOST"},
		{in: "s3://h/bkt?x=hunter2", inErr: "only query is ?style"},
		{in: "s3://h/bkt/p?style=path", want: Target{Endpoint: "h", Secure: true, Bucket: "bkt", Prefix: "p", Style: StylePath}},
		{in: "s3://s3.example.com/bkt?style=virtual", want: Target{Endpoint: "s3.example.com", Secure: true, Bucket: "bkt", Style: StyleVirtual}},
		{in: "s3://h/bkt?style=dns", inErr: "only query is ?style"},
		{in: "s3://h/bkt?style=path&style=virtual", inErr: "only query is ?style"},
		{in: "s3://h/bkt?style=path&x=1", inErr: "only query is ?style"},
		{in: "s3://h/bkt#frag", inErr: "want s3://HOST"},
		{in: "s3://h/", inErr: "bucket"},
		{in: "s3://h/UPPER", inErr: "bucket"},
		{in: "s3://h/bkt/a/../b", inErr: "bad prefix"},
		{in: "s3://h/bkt/a//b", inErr: "bad prefix"},
		{in: "http://h/bkt", inErr: "want s3://"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if tc.inErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.inErr) {
					t.Fatalf("error %v, want %q", err, tc.inErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error quotes a secret: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseURL = %+v, %v; want %+v", got, err, tc.want)
			}
			if back, err := ParseURL(got.String()); err != nil || back != got {
				t.Errorf("round trip %s: %+v %v", got, back, err)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://h/b", "s3+http://h:1/bkt/p/q", "s3://u:p@h/b", "s3://h/b/../c", "s3://h/b?style=path"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseURL(s)
		if err != nil {
			return
		}
		if _, err := ParseURL(tg.String()); err != nil {
			t.Errorf("%q parsed as %+v, which does not parse again: %v", s, tg, err)
		}
		if strings.HasPrefix(tg.Prefix, "/") || strings.HasSuffix(tg.Prefix, "/") || strings.Contains(tg.Prefix, "..") {
			t.Errorf("prefix %q", tg.Prefix)
		}
	})
}
