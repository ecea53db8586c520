package agent

import (
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// holdsCert: the CA given now must be the saved one, alone or in a bundle;
// a file with no certificate proves nothing.
func TestHoldsCert(t *testing.T) {
	ca := func() []byte {
		c, err := pki.Init(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return c.CertPEM()
	}
	saved, other := ca(), ca()
	tests := []struct {
		name   string
		bundle []byte
		want   bool
	}{
		{"same", saved, true},
		{"same, other spacing", append(append([]byte("\n\n"), saved...), '\n'), true},
		{"in a bundle", append(append([]byte(nil), other...), saved...), true},
		{"another CA", other, false},
		{"no certificate", []byte("not a PEM file"), true},
	}
	for _, tc := range tests {
		if got := holdsCert(tc.bundle, saved); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
