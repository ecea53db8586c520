package scan

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxRecord bounds one record of engine output (a path and a signature);
// the rest of a longer one is dropped.
const maxRecord = 64 << 10

// records splits engine output into records: a record starts at a line
// for which starts reports true, and takes the lines after it that do
// not (a file name with a newline). Text before the first record is
// dropped. fn gets each record without its final newline.
func records(r io.Reader, starts func(line []byte) bool, fn func(rec []byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var rec []byte
	open := false
	flush := func() {
		if open {
			fn(bytes.TrimSuffix(rec, []byte("\n")))
		}
		rec, open = rec[:0], false
	}
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line) < maxRecord {
			line = append(line, chunk[:min(len(chunk), maxRecord-len(line))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // the same line goes on
		}
		if len(line) > 0 {
			if starts(line) {
				flush()
				open = true
			}
			if open && len(rec) < maxRecord {
				rec = append(rec, line[:min(len(line), maxRecord-len(rec))]...)
			}
			line = line[:0]
		}
		if errors.Is(err, io.EOF) {
			flush()
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// rootOf returns the target whose root the path starts with (root + "/")
// and the path relative to it ("/…"), the longest root first.
func rootOf(p []byte, ts []Target) (Target, string, bool) {
	best := -1
	for i, t := range ts {
		if bytes.HasPrefix(p, []byte(t.Root+"/")) && (best < 0 || len(t.Root) > len(ts[best].Root)) {
			best = i
		}
	}
	if best < 0 {
		return Target{}, "", false
	}
	return ts[best], string(p[len(ts[best].Root):]), true
}

// parseClamscan reads clamscan -i --no-summary output: records
// "ROOT/PATH: SIGNATURE FOUND". A record that does not end so (clamscan
// printed something else) is not a finding.
func parseClamscan(r io.Reader, ts []Target) ([]Finding, int, error) {
	var out []Finding
	n := 0
	err := records(r, func(line []byte) bool {
		_, _, ok := rootOf(line, ts)
		return ok
	}, func(rec []byte) {
		body, ok := bytes.CutSuffix(rec, []byte(" FOUND"))
		if !ok {
			return
		}
		i := bytes.LastIndex(body, []byte(": "))
		if i < 0 {
			return
		}
		t, rel, ok := rootOf(body[:i], ts)
		if !ok {
			return
		}
		n++
		if len(out) < MaxFindings {
			out = append(out, Finding{Filesystem: t.Name, Path: rel, Signature: string(body[i+2:])})
		}
	})
	return out, n, err
}

// parseYara reads yara output: records "RULE ROOT/PATH", RULE an
// identifier.
func parseYara(r io.Reader, ts []Target) ([]Finding, int, error) {
	var out []Finding
	n := 0
	split := func(line []byte) ([]byte, []byte, bool) {
		rule, rest, ok := bytes.Cut(line, []byte(" "))
		return rule, rest, ok && isIdentifier(rule)
	}
	err := records(r, func(line []byte) bool {
		_, rest, ok := split(line)
		if !ok {
			return false
		}
		_, _, ok = rootOf(rest, ts)
		return ok
	}, func(rec []byte) {
		rule, rest, _ := split(rec)
		t, rel, _ := rootOf(rest, ts)
		n++
		if len(out) < MaxFindings {
			out = append(out, Finding{Filesystem: t.Name, Path: rel, Signature: string(rule)})
		}
	})
	return out, n, err
}

// isIdentifier reports whether b is a yara identifier.
func isIdentifier(b []byte) bool {
	if len(b) == 0 || len(b) > 128 {
		return false
	}
	for i, c := range b {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
