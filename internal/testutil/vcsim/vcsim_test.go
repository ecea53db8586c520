package vcsim

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
)

func TestConnect(t *testing.T) {
	sim := Start(t, nil)
	loc, err := vsphere.ParseURL(sim.URL("/DC0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bad := strings.Repeat("AB:", 31) + "AB"
	tests := []struct {
		name string
		o    vsphere.ConnectOptions
		want error
		in   string
	}{
		{name: "roots", o: sim.Options()},
		{name: "thumbprint", o: vsphere.ConnectOptions{Password: Password, Thumbprint: strings.ToLower(strings.ReplaceAll(sim.Thumbprint, ":", ""))}},
		{name: "insecure", o: vsphere.ConnectOptions{Password: Password, Insecure: true}},
		{name: "wrong password", o: vsphere.ConnectOptions{Password: "hunter2", RootCAs: sim.RootCAs}, want: vsphere.ErrLogin, in: "incorrect user name or password"},
		{name: "wrong thumbprint", o: vsphere.ConnectOptions{Password: Password, Thumbprint: bad}, want: vsphere.ErrThumbprint, in: sim.Thumbprint},
		{name: "untrusted", o: vsphere.ConnectOptions{Password: Password}, in: "not trusted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := vsphere.Connect(ctx, loc, tc.o)
			if tc.in == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.Logout(ctx)
				return
			}
			if err == nil {
				t.Fatal("connected")
			}
			if tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("error %v, want %v containing %q", err, tc.want, tc.in)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), Password) {
				t.Errorf("error quotes the password: %v", err)
			}
		})
	}
}

func TestRequireSession(t *testing.T) {
	sim := Start(t, nil)
	sim.WriteDisk(t, "DC0_H0_VM0", 0, 0, []byte("data"))
	u := "https://" + sim.Host + "/folder/DC0_H0_VM0/disk1-flat.vmdk?dcPath=DC0&dsName=LocalDS_0"
	get := func(hc *http.Client) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Range", "bytes=0-3")
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.RootCAs}}}
	c := sim.Connect(t)
	session := &http.Client{Transport: c.Client.Client.DefaultTransport(), Jar: c.Client.Client.Jar}
	if got := get(plain); got != http.StatusPartialContent {
		t.Errorf("without RequireSession: %d", got)
	}
	sim.RequireSession(true)
	if got := get(plain); got != http.StatusUnauthorized {
		t.Errorf("no session cookie: %d", got)
	}
	if got := get(session); got != http.StatusPartialContent {
		t.Errorf("logged-in session: %d", got)
	}
}
