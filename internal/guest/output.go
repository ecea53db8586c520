package guest

import (
	"fmt"
	"sync"
	"unicode/utf8"
)

// MaxOutput is the most output a Result keeps: the tail, behind a marker
// line when anything was dropped.
const MaxOutput = 64 << 10

// tailBuffer keeps the last max bytes written to it and counts the rest.
// It is safe for concurrent writers (the stdout and stderr copiers).
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped int64
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{max: limit} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if len(p) > b.max {
		b.dropped += int64(len(p) - b.max)
		p = p[len(p)-b.max:]
	}
	if over := len(b.buf) + len(p) - b.max; over > 0 {
		b.dropped += int64(over)
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// String renders the kept output within max bytes (see renderTail).
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return renderTail(b.buf, b.dropped, b.max)
}

// renderTail returns out when nothing was dropped; otherwise a marker line
// with the number of bytes dropped, then as much of the tail of out as fits
// in limit bytes with the marker, starting on a UTF-8 character boundary.
func renderTail(out []byte, dropped int64, limit int) string {
	if dropped == 0 && len(out) <= limit {
		return string(out)
	}
	total := dropped + int64(len(out))
	// The marker for total is at least as long as the final one.
	keep := limit - len(dropMarker(total))
	if keep < 0 {
		keep = 0
	}
	if len(out) > keep {
		out = out[len(out)-keep:]
	}
	for len(out) > 0 && !utf8.RuneStart(out[0]) {
		out = out[1:]
	}
	return dropMarker(total-int64(len(out))) + string(out)
}

func dropMarker(n int64) string {
	return fmt.Sprintf("[holdfast: %d bytes of output dropped]\n", n)
}

// combineOutput joins separately captured stdout and stderr (guest agent)
// within MaxOutput, keeping the tail. agentTruncated says the agent already
// dropped some (its own limit is 16 MiB per stream).
func combineOutput(stdout, stderr []byte, agentTruncated bool) string {
	const note = "[holdfast: the guest agent truncated the output]\n"
	limit, prefix := MaxOutput, ""
	if agentTruncated {
		limit, prefix = MaxOutput-len(note), note
	}
	b := newTailBuffer(limit)
	_, _ = b.Write(stdout)
	_, _ = b.Write(stderr)
	return prefix + b.String()
}
