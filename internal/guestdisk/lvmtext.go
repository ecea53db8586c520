package guestdisk

import (
	"fmt"
	"strconv"
)

// section is one { … } of LVM2's metadata text: keys in order and values
// (int64, string, []any of those, or a nested section).
type section struct {
	keys   []string
	values map[string]any
}

func (s section) num(k string) int64 {
	v, _ := s.values[k].(int64)
	return v
}

func (s section) str(k string) string {
	v, _ := s.values[k].(string)
	return v
}

func (s section) list(k string) []string {
	l, _ := s.values[k].([]any)
	var out []string
	for _, x := range l {
		if str, ok := x.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

// Limits on the metadata text parser.
const (
	lvmMaxDepth = 16
	lvmMaxItems = 1 << 16 // values in one section or list
)

type lvmParser struct {
	b   []byte
	pos int
}

// parseLVMConfig parses LVM2's metadata text format:
//
//	name = value        (number, "string" or [ list, of, values ])
//	name { … }          (a section)
//	# comment to the end of the line
func parseLVMConfig(b []byte) (section, error) {
	p := &lvmParser{b: b}
	s, err := p.section(0, false)
	if err != nil {
		return section{}, fmt.Errorf("%w: metadata text at byte %d: %v", ErrLVM, p.pos, err)
	}
	return s, nil
}

func (p *lvmParser) skip() {
	for p.pos < len(p.b) {
		switch c := p.b[p.pos]; {
		case c == '#':
			for p.pos < len(p.b) && p.b[p.pos] != '\n' {
				p.pos++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *lvmParser) section(depth int, braced bool) (section, error) {
	if depth > lvmMaxDepth {
		return section{}, fmt.Errorf("sections nested deeper than %d", lvmMaxDepth)
	}
	s := section{values: map[string]any{}}
	for {
		p.skip()
		if p.pos >= len(p.b) {
			if braced {
				return section{}, fmt.Errorf("unterminated section")
			}
			return s, nil
		}
		if p.b[p.pos] == '}' {
			if !braced {
				return section{}, fmt.Errorf("unexpected }")
			}
			p.pos++
			return s, nil
		}
		name := p.ident()
		if name == "" {
			return section{}, fmt.Errorf("expected a name, got %q", p.b[p.pos])
		}
		p.skip()
		if p.pos >= len(p.b) {
			return section{}, fmt.Errorf("%s: unexpected end", name)
		}
		var v any
		var err error
		switch p.b[p.pos] {
		case '{':
			p.pos++
			v, err = p.section(depth+1, true)
		case '=':
			p.pos++
			v, err = p.value(depth)
		default:
			return section{}, fmt.Errorf("%s: expected = or {", name)
		}
		if err != nil {
			return section{}, err
		}
		if _, dup := s.values[name]; !dup {
			if len(s.keys) >= lvmMaxItems {
				return section{}, fmt.Errorf("more than %d entries", lvmMaxItems)
			}
			s.keys = append(s.keys, name)
		}
		s.values[name] = v
	}
}

func (p *lvmParser) ident() string {
	start := p.pos
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		if c == '_' || c == '-' || c == '.' || c == '+' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			p.pos++
			continue
		}
		break
	}
	return string(p.b[start:p.pos])
}

func (p *lvmParser) value(depth int) (any, error) {
	p.skip()
	if p.pos >= len(p.b) {
		return nil, fmt.Errorf("value expected")
	}
	switch c := p.b[p.pos]; {
	case c == '"':
		return p.str()
	case c == '[':
		if depth > lvmMaxDepth {
			return nil, fmt.Errorf("lists nested too deep")
		}
		p.pos++
		var l []any
		for {
			p.skip()
			if p.pos >= len(p.b) {
				return nil, fmt.Errorf("unterminated list")
			}
			if p.b[p.pos] == ']' {
				p.pos++
				return l, nil
			}
			if p.b[p.pos] == ',' {
				p.pos++
				continue
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if len(l) >= lvmMaxItems {
				return nil, fmt.Errorf("list of more than %d values", lvmMaxItems)
			}
			l = append(l, v)
		}
	default:
		start := p.pos
		for p.pos < len(p.b) && (p.b[p.pos] == '-' || p.b[p.pos] == '.' || p.b[p.pos] >= '0' && p.b[p.pos] <= '9') {
			p.pos++
		}
		tok := string(p.b[start:p.pos])
		if n, err := strconv.ParseInt(tok, 10, 64); err == nil {
			return n, nil
		}
		if f, err := strconv.ParseFloat(tok, 64); err == nil {
			return f, nil
		}
		return nil, fmt.Errorf("bad value %q", tok)
	}
}

func (p *lvmParser) str() (string, error) {
	p.pos++ // opening quote
	var out []byte
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		p.pos++
		switch c {
		case '"':
			return string(out), nil
		case '\\':
			if p.pos < len(p.b) {
				out = append(out, p.b[p.pos])
				p.pos++
			}
		default:
			out = append(out, c)
		}
	}
	return "", fmt.Errorf("unterminated string")
}
