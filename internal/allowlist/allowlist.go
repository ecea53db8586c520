package allowlist

import (
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
)

// ErrInvalid marks an entry that is neither a CIDR nor an address.
var ErrInvalid = errors.New("not a CIDR or an address")

// Parse reads entries such as "10.0.0.0/24", "192.0.2.7" or "2001:db8::/64"
// (an address alone stands for itself: /32 or /128). Prefixes are masked
// and IPv4-mapped IPv6 forms are read as IPv4.
func Parse(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, s := range entries {
		p, err := parseOne(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseOne(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		addr, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, fmt.Errorf("allow %q: %w (want a CIDR such as 10.0.0.0/24)", s, ErrInvalid)
		}
		p = netip.PrefixFrom(addr, addr.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Strings formats a list as Parse reads it.
func Strings(list []netip.Prefix) []string {
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = p.String()
	}
	return out
}

// Contains reports whether a peer address (a net.Addr of a TCP or UDP
// connection) is in the list.
func Contains(list []netip.Prefix, a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Host is the list of one entry, the host of remote ("host:port", as
// http.Request.RemoteAddr has it): the requester alone.
func Host(remote string) ([]netip.Prefix, error) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return nil, fmt.Errorf("requester address %q: %w", remote, err)
	}
	a := ap.Addr().Unmap().WithZone("")
	return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil
}

// The widest list that is narrow: at most a /24 worth of IPv4 addresses
// and a /64 worth of IPv6 addresses, counted over all entries.
const (
	NarrowIPv4Bits = 24
	NarrowIPv6Bits = 64
)

// Narrow reports whether the list covers at most 2^(32-NarrowIPv4Bits)
// IPv4 addresses and 2^(128-NarrowIPv6Bits) IPv6 addresses in all (one /24
// and one /64, or smaller networks adding up to no more). An empty list is
// narrow.
func Narrow(list []netip.Prefix) bool {
	v4, v6 := new(big.Int), new(big.Int)
	for _, p := range list {
		host := p.Addr().BitLen() - p.Bits()
		n := new(big.Int).Lsh(big.NewInt(1), uint(host))
		if p.Addr().Is4() {
			v4.Add(v4, n)
		} else {
			v6.Add(v6, n)
		}
	}
	max4 := new(big.Int).Lsh(big.NewInt(1), 32-NarrowIPv4Bits)
	max6 := new(big.Int).Lsh(big.NewInt(1), 128-NarrowIPv6Bits)
	return v4.Cmp(max4) <= 0 && v6.Cmp(max6) <= 0
}
