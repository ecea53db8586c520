package allowlist

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []string
		err  bool
	}{
		{in: []string{"10.1.2.3/8", "192.0.2.7", "::1", "2001:db8::1/64"}, want: []string{"10.0.0.0/8", "192.0.2.7/32", "::1/128", "2001:db8::/64"}},
		{in: []string{"::ffff:10.0.0.1/120"}, want: []string{"10.0.0.0/24"}},
		{in: []string{"0.0.0.0/0"}, want: []string{"0.0.0.0/0"}},
		{in: []string{"10.0.0.0/33"}, err: true},
		{in: []string{"example.com"}, err: true},
		{in: nil, want: []string{}},
	} {
		got, err := Parse(c.in)
		if c.err {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q): %v, want ErrInvalid", c.in, err)
			}
			continue
		}
		if err != nil || !slices.Equal(Strings(got), c.want) {
			t.Errorf("Parse(%q) = %v %v, want %v", c.in, got, err, c.want)
		}
	}
}

type fakeAddr string

func (f fakeAddr) Network() string { return "tcp" }
func (f fakeAddr) String() string  { return string(f) }

func TestContains(t *testing.T) {
	list, _ := Parse([]string{"10.0.0.0/8", "::1"})
	for addr, want := range map[string]bool{
		"10.1.2.3:5555": true, "[::1]:10809": true, "127.0.0.1:1": false, "[::ffff:10.0.0.1]:1": true, "bogus": false,
	} {
		var a net.Addr = fakeAddr(addr)
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			a = net.TCPAddrFromAddrPort(ap)
		}
		if got := Contains(list, a); got != want {
			t.Errorf("Contains(%s) = %v", addr, got)
		}
	}
}

func TestHost(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.1:1234": "192.0.2.1/32", "[2001:db8::5]:443": "2001:db8::5/128", "[::ffff:10.0.0.1]:80": "10.0.0.1/32",
		"[fe80::1%eth0]:1": "fe80::1/128",
	} {
		got, err := Host(remote)
		if err != nil || len(got) != 1 || got[0].String() != want {
			t.Errorf("Host(%s) = %v %v, want %s", remote, got, err, want)
		}
	}
	if _, err := Host("pipe"); err == nil {
		t.Error("Host of a non-IP address")
	}
}

func TestNarrow(t *testing.T) {
	for _, c := range []struct {
		list []string
		want bool
	}{
		{nil, true},
		{[]string{"192.0.2.7"}, true},
		{[]string{"192.0.2.0/24"}, true},
		{[]string{"192.0.2.0/25", "198.51.100.0/25"}, true},
		{[]string{"192.0.2.0/24", "198.51.100.7"}, false},
		{[]string{"10.0.0.0/23"}, false},
		{[]string{"0.0.0.0/0"}, false},
		{[]string{"2001:db8::/64", "192.0.2.0/24"}, true},
		{[]string{"2001:db8::/63"}, false},
		{[]string{"::/0"}, false},
		{[]string{"2001:db8::/64", "2001:db8:1::1"}, false},
	} {
		list, err := Parse(c.list)
		if err != nil {
			t.Fatal(err)
		}
		if got := Narrow(list); got != c.want {
			t.Errorf("Narrow(%v) = %v, want %v", c.list, got, c.want)
		}
	}
}
