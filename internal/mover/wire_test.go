package mover

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

func TestBitmapRoundTrip(t *testing.T) {
	for n := 1; n <= 20; n++ {
		present := make([]bool, n)
		for i := range present {
			present[i] = (i*7+n)%3 == 0
		}
		b := encodeBitmap(present)
		got, err := decodeBitmap(b, n)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(present) {
			t.Fatalf("n=%d: %v %v", n, got, err)
		}
		if n%8 != 0 {
			b[len(b)-1] |= 0x80
			if _, err := decodeBitmap(b, n); !errors.Is(err, ErrProtocol) {
				t.Fatalf("n=%d: stray bit accepted", n)
			}
		}
		if _, err := decodeBitmap(append(b, 0), n); err == nil {
			t.Fatalf("n=%d: long reply accepted", n)
		}
	}
}

func TestIDsRoundTrip(t *testing.T) {
	ids := []repo.ChunkID{{1}, {2, 3}, {0xff}}
	got, err := decodeIDs(encodeIDs(ids))
	if err != nil || fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("%v %v", got, err)
	}
	for _, n := range []int{0, 31, 33, (MaxHasIDs + 1) * 32} {
		if _, err := decodeIDs(make([]byte, n)); err == nil {
			t.Errorf("%d bytes accepted", n)
		}
	}
}

func TestParseDisk(t *testing.T) {
	for s, ok := range map[string]bool{"0": true, "7": true, "1023": true, "1024": false, "-1": false,
		"01": false, "+1": false, "": false, "1e3": false, " 1": false} {
		if _, err := parseDisk(s); (err == nil) != ok {
			t.Errorf("parseDisk(%q): %v", s, err)
		}
	}
}

func TestAuthorize(t *testing.T) {
	e := newEnv(t, nil, ServerOptions{Authorize: func(r *http.Request, name string) (Access, error) {
		if r.TLS.PeerCertificates[0].Subject.CommonName != "proxy" {
			return Access{}, errors.New("certificate not allowed for " + name)
		}
		return Access{Sessions: 1}, nil
	}})
	e.dial(t, e.ts.URL, nil)
	other := e.tls.Clone()
	other.Certificates = []tls.Certificate{e.ca.clientCert(t, "stranger")}
	_, err := Dial(context.Background(), ClientOptions{URL: e.ts.URL, Repo: "main", Password: []byte(password),
		HTTP: NewHTTPClient(other)})
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("unauthorized client: %v", err)
	}
}
