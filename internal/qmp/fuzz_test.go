package qmp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// fuzzLimit keeps fuzzed messages small enough to hit the size cap.
const fuzzLimit = 4096

func FuzzReadMessage(f *testing.F) {
	for _, s := range []string{
		prettyGreeting,
		`{"return": {}, "id": 1}` + "\r\n" + `{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}`,
		`{"error": {"class": "GenericError", "desc": "x \"}\\"}, "id": 2}`,
		`{"return": [{"a": [1, {"b": "]}"}]}], "id": 3}`,
		"\xff{\"return\": 5}\n{\"ret\xffurn\"}",
		`{"return": "no id"}{"id": "1", "return": 1}{]`,
		`{"event": "E", "data": null}` + strings.Repeat("{", 5000),
		`garbage`, `{"id": 18446744073709551615, "return": 0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReader(t, data)
		checkDemux(t, data)
	})
}

// checkReader: every message returned is a bounded object; the reader ends.
func checkReader(t *testing.T, data []byte) {
	br := bufio.NewReader(bytes.NewReader(data))
	for range len(data) + 1 {
		b, err := readMessage(br, fuzzLimit)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
				errors.Is(err, ErrProtocol) || errors.Is(err, ErrMessageTooLarge) {
				return
			}
			t.Fatalf("unexpected error %v", err)
		}
		if len(b) > fuzzLimit || b[0] != '{' || (b[len(b)-1] != '}' && b[len(b)-1] != ']') {
			t.Fatalf("bad message %q", b)
		}
		_, _ = decodeMessage(b)
	}
	t.Fatal("reader did not end")
}

// checkDemux feeds the bytes to a client's reader loop with one caller
// pending and one subscription: it must end, fail or answer the caller, and
// end the subscription.
func checkDemux(t *testing.T, data []byte) {
	a, b := net.Pipe()
	defer b.Close()
	c := newClient(a)
	id, ch, err := c.register()
	if err != nil || id != 1 {
		t.Fatalf("register: %d, %v", id, err)
	}
	sub := c.Subscribe()
	c.readLoop(bufio.NewReader(bytes.NewReader(data)))
	select {
	case <-ch:
	case <-c.done:
	default:
		t.Fatal("pending caller neither answered nor failed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range maxQueuedEvents + 1 {
		if _, err := sub.Next(ctx); err != nil {
			if !errors.Is(err, ErrDisconnected) && !errors.Is(err, ErrEventOverflow) {
				t.Fatalf("subscription ended with %v", err)
			}
			return
		}
	}
	t.Fatal("subscription did not end")
}

// FuzzAgentSync: awaitSync on arbitrary agent output ends (at EOF at the
// latest) and succeeds only after a sentinel.
func FuzzAgentSync(f *testing.F) {
	f.Add([]byte("\xff{\"return\": 7}\n"), uint32(7))
	f.Add([]byte("{\"return\": 7}\xff{\"ret\xff{\"return\": 9}\n\xff{\"return\": 7}"), uint32(7))
	f.Add([]byte("\xff{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}}"), uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, id uint32) {
		err := awaitSync(bufio.NewReader(bytes.NewReader(data)), id)
		if err == nil && bytes.IndexByte(data, sentinel) < 0 {
			t.Fatalf("synced without a sentinel in %q", data)
		}
	})
}
