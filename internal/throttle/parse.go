package throttle

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ParseRules parses one rule per line (see the package documentation);
// blank lines and lines starting with '#' are skipped. Rule names must be
// unique. Windows use loc (nil means time.Local).
func ParseRules(text string, loc *time.Location) (Rules, error) {
	var rs Rules
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := ParseRule(line, loc)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("line %d: duplicate rule name %q", i+1, r.Name)
		}
		seen[r.Name] = true
		rs = append(rs, r)
	}
	return rs, nil
}

// ParseRule parses one rule, e.g.
// "wan: 10.0.0.0/8 -> 192.168.50.0/24 10MiB/s mon-fri 08:00-18:00".
// Windows use loc (nil means time.Local).
func ParseRule(s string, loc *time.Location) (Rule, error) {
	if loc == nil {
		loc = time.Local
	}
	toks := tokenize(s)
	if len(toks) == 0 {
		return Rule{}, errors.New("throttle: empty rule")
	}
	name, ok := strings.CutSuffix(toks[0], ":")
	if !ok || !validName(name) {
		return Rule{}, fmt.Errorf("throttle: rule must start with \"name:\", got %q", toks[0])
	}
	r := Rule{Name: name}
	toks, err := parseNets(&r, toks[1:])
	if err != nil {
		return Rule{}, fmt.Errorf("throttle: rule %s: %w", name, err)
	}
	if len(toks) == 0 {
		return Rule{}, fmt.Errorf("throttle: rule %s: missing rate", name)
	}
	if r.Rate, err = ParseRate(toks[0]); err != nil {
		return Rule{}, fmt.Errorf("throttle: rule %s: %w", name, err)
	}
	if r.Windows, err = parseWindows(toks[1:], loc); err != nil {
		return Rule{}, fmt.Errorf("throttle: rule %s: %w", name, err)
	}
	return r, nil
}

// tokenize splits s at spaces, after making "->" a token of its own and
// dropping spaces next to commas.
func tokenize(s string) []string {
	s = strings.ReplaceAll(s, "->", " -> ")
	f := strings.Fields(s)
	var out []string
	for _, t := range f {
		n := len(out)
		if n > 0 && t != "->" && out[n-1] != "->" &&
			(strings.HasSuffix(out[n-1], ",") || strings.HasPrefix(t, ",")) {
			out[n-1] += t
			continue
		}
		out = append(out, t)
	}
	return out
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		ok := c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' ||
			c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !ok {
			return false
		}
	}
	return true
}

// parseNets consumes "[addrs] -> [addrs]" if toks contain "->".
func parseNets(r *Rule, toks []string) ([]string, error) {
	arrow := -1
	for i, t := range toks {
		if t == "->" {
			arrow = i
			break
		}
	}
	if arrow < 0 {
		return toks, nil
	}
	if arrow > 1 {
		return nil, fmt.Errorf("unexpected %q before \"->\"", toks[0])
	}
	var err error
	if arrow == 1 {
		if r.Source, err = parsePrefixes(toks[0]); err != nil {
			return nil, err
		}
	}
	toks = toks[arrow+1:]
	if len(toks) > 0 && !startsRate(toks[0]) {
		if r.Target, err = parsePrefixes(toks[0]); err != nil {
			return nil, err
		}
		toks = toks[1:]
	}
	return toks, nil
}

// startsRate reports whether t, the token after "->", is the rate rather
// than a target list (a token that parses as addresses is a target).
func startsRate(t string) bool {
	if _, err := parsePrefixes(t); err == nil {
		return false
	}
	_, err := ParseRate(t)
	return err == nil
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	if s == "any" || s == "*" {
		return nil, nil
	}
	var ps []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		var p netip.Prefix
		var err error
		if strings.Contains(part, "/") {
			p, err = netip.ParsePrefix(part)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(part); err == nil && a.Zone() == "" {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || !p.IsValid() {
			return nil, fmt.Errorf("bad network %q", part)
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}
