package qmp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// MaxMessageSize caps a single message read from QEMU or the guest agent.
// A longer message fails the connection with ErrMessageTooLarge instead of
// growing a buffer without bound.
const MaxMessageSize = 16 << 20

// sentinel is the byte the guest agent sends before a guest-sync-delimited
// reply, and the client sends to reset the agent's parser. It never occurs
// in UTF-8 JSON.
const sentinel = 0xFF

// message is any object QEMU or the guest agent sends: a greeting, a reply
// (return or error, with the request id) or an event.
type message struct {
	QMP       *greetingBody   `json:"QMP"`
	Return    json.RawMessage `json:"return"`
	Error     *Error          `json:"error"`
	ID        json.RawMessage `json:"id"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *timestamp      `json:"timestamp"`
}

type timestamp struct {
	Seconds      int64 `json:"seconds"`
	Microseconds int64 `json:"microseconds"`
}

func (t *timestamp) time() time.Time {
	if t == nil || t.Seconds < 0 {
		return time.Time{}
	}
	return time.Unix(t.Seconds, t.Microseconds*1000)
}

// isReply reports whether m answers a command.
func (m *message) isReply() bool { return m.Return != nil || m.Error != nil }

// id returns the numeric request id of a reply, ok=false when it has none.
func (m *message) id() (uint64, bool) {
	if m.ID == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(string(m.ID), 10, 64)
	return n, err == nil
}

// request is a command as sent on the wire.
type request struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
	ID        uint64 `json:"id,omitempty"`
}

func encodeRequest(command string, args any, id uint64) ([]byte, error) {
	b, err := json.Marshal(request{Execute: command, Arguments: args, ID: id})
	if err != nil {
		return nil, fmt.Errorf("qmp %s: encoding arguments: %w", command, err)
	}
	return append(b, '\n'), nil
}

func decodeMessage(b []byte) (message, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return message{}, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return m, nil
}

// readMessage reads one JSON object from r. It skips whitespace and 0xFF
// sentinel bytes before it, follows strings and nesting, and returns the
// object's bytes as soon as the outermost brace closes, so it works for
// compact and pretty-printed output alike. It never buffers more than limit
// bytes. A 0xFF byte inside the object (the agent's resync sentinel) ends it
// with ErrProtocol and is left unread. The bytes are not validated as JSON:
// decodeMessage does that.
func readMessage(r *bufio.Reader, limit int) ([]byte, error) {
	b, err := skipSpace(r)
	if err != nil {
		return nil, err
	}
	if b != '{' {
		return nil, fmt.Errorf("%w: unexpected byte %#x between messages", ErrProtocol, b)
	}
	var sc objectScanner
	buf := make([]byte, 0, 512)
	for {
		if len(buf) >= limit {
			return nil, fmt.Errorf("%w (over %d bytes)", ErrMessageTooLarge, limit)
		}
		buf = append(buf, b)
		if sc.step(b) {
			return buf, nil
		}
		if b, err = r.ReadByte(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if b == sentinel { // never inside JSON: a resync began mid-message
			_ = r.UnreadByte()
			return nil, fmt.Errorf("%w: 0xFF inside a message", ErrProtocol)
		}
	}
}

func skipSpace(r *bufio.Reader) (byte, error) {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n', sentinel:
			continue
		}
		return b, nil
	}
}

// objectScanner finds the end of a JSON object byte by byte.
type objectScanner struct {
	depth    int
	inString bool
	escaped  bool
}

// step consumes b and reports whether it closed the outermost object.
func (s *objectScanner) step(b byte) bool {
	if s.inString {
		switch {
		case s.escaped:
			s.escaped = false
		case b == '\\':
			s.escaped = true
		case b == '"':
			s.inString = false
		}
		return false
	}
	switch b {
	case '"':
		s.inString = true
	case '{', '[':
		s.depth++
	case '}', ']':
		s.depth--
		return s.depth <= 0
	}
	return false
}
