package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// fakeQMP is the server end of a scripted QMP conversation.
type fakeQMP struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// A pretty-printed greeting (as with "-mon pretty=on") exercises the
// message reader across lines.
const prettyGreeting = `{
    "QMP": {
        "version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2"},
        "capabilities": ["oob"]
    }
}
`

// newFake connects a Client to a fake server that greets it and accepts
// qmp_capabilities.
func newFake(t *testing.T) (*fakeQMP, *Client) {
	t.Helper()
	srv, cli := net.Pipe()
	f := &fakeQMP{t: t, conn: srv, br: bufio.NewReader(srv)}
	t.Cleanup(func() { srv.Close() })
	type result struct {
		c   *Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := New(testContext(t, 5*time.Second), cli)
		done <- result{c, err}
	}()
	f.send(prettyGreeting)
	if cmd, id := f.recv(); cmd != "qmp_capabilities" {
		t.Fatalf("first command %q", cmd)
	} else {
		f.send(fmt.Sprintf(`{"return": {}, "id": %s}`, id))
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return f, r.c
}

func (f *fakeQMP) send(s string) {
	f.t.Helper()
	if _, err := f.conn.Write([]byte(s + "\r\n")); err != nil {
		f.t.Errorf("fake server write: %v", err)
	}
}

// recv reads a request and returns its command and raw id.
func (f *fakeQMP) recv() (string, string) {
	f.t.Helper()
	b, err := readMessage(f.br, MaxMessageSize)
	if err != nil {
		f.t.Fatalf("fake server read: %v", err)
	}
	var r struct {
		Execute string          `json:"execute"`
		ID      json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		f.t.Fatalf("fake server: bad request %q: %v", b, err)
	}
	return r.Execute, string(r.ID)
}

type execResult struct {
	v   string
	err error
}

func goExecute(ctx context.Context, c *Client, cmd string) chan execResult {
	ch := make(chan execResult, 1)
	go func() {
		var v string
		err := c.Execute(ctx, cmd, nil, &v)
		ch <- execResult{v, err}
	}()
	return ch
}

func TestClientDemultiplexes(t *testing.T) {
	f, c := newFake(t)
	if v := c.Greeting().Version; v.String() != "7.2.22" || v.Package != "Debian 1:7.2" {
		t.Errorf("greeting %+v", c.Greeting())
	}
	ctx := testContext(t, 5*time.Second)
	sub := c.Subscribe("STOP")
	defer sub.Close()
	a := goExecute(ctx, c, "a")
	_, idA := f.recv()
	b := goExecute(ctx, c, "b")
	_, idB := f.recv()
	// Replies out of order, an event in between, an unknown id, a reply
	// without id while two calls are pending (dropped).
	f.send(`{"return": "no id"}`)
	f.send(`{"return": "for b", "id": ` + idB + `}`)
	f.send(`{"event": "STOP", "timestamp": {"seconds": 1700000000, "microseconds": 5}}`)
	f.send(`{"event": "RESUME", "data": {}}`)
	f.send(`{"return": "stray", "id": 999999}`)
	f.send(`{"error": {"class": "DeviceNotFound", "desc": "no a"}, "id": ` + idA + `}`)
	if r := <-b; r.err != nil || r.v != "for b" {
		t.Errorf("b: %+v", r)
	}
	r := <-a
	var qerr *Error
	if !errors.As(r.err, &qerr) || qerr.Class != ClassDeviceNotFound || qerr.Desc != "no a" || qerr.Command != "a" {
		t.Errorf("a: %+v", r)
	}
	e, err := sub.Next(ctx)
	if err != nil || e.Name != "STOP" || e.Time.Unix() != 1700000000 || e.Data != nil {
		t.Errorf("event %+v, %v", e, err)
	}
}

func TestClientReplyWithoutID(t *testing.T) {
	f, c := newFake(t)
	ch := goExecute(testContext(t, 5*time.Second), c, "x")
	f.recv()
	f.send(`{"error": {"class": "GenericError", "desc": "JSON parse error"}}`)
	if r := <-ch; !IsClass(r.err, ClassGenericError) {
		t.Errorf("id-less reply with one caller pending: %+v", r)
	}
}

func TestClientTimeoutThenLateReply(t *testing.T) {
	f, c := newFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	ch := goExecute(ctx, c, "slow")
	_, id := f.recv()
	if r := <-ch; !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("slow: %+v", r)
	}
	f.send(`{"return": "late", "id": ` + id + `}`)
	ch = goExecute(testContext(t, 5*time.Second), c, "next")
	_, id = f.recv()
	f.send(`{"return": "ok", "id": ` + id + `}`)
	if r := <-ch; r.err != nil || r.v != "ok" {
		t.Fatalf("after a late reply: %+v", r)
	}
}

func TestClientCloseFailsPending(t *testing.T) {
	f, c := newFake(t)
	ch := goExecute(context.Background(), c, "hang")
	f.recv()
	sub := c.Subscribe()
	c.Close()
	if r := <-ch; !errors.Is(r.err, ErrClosed) {
		t.Errorf("pending call after Close: %+v", r)
	}
	if _, err := sub.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("subscription after Close: %v", err)
	}
	if err := c.Execute(context.Background(), "x", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Execute after Close: %v", err)
	}
}

func TestClientProtocolError(t *testing.T) {
	f, c := newFake(t)
	ch := goExecute(context.Background(), c, "x")
	f.recv()
	f.send(`garbage`)
	r := <-ch
	if !errors.Is(r.err, ErrDisconnected) || !errors.Is(r.err, ErrProtocol) {
		t.Errorf("after garbage: %+v", r)
	}
	<-c.Done()
}

func TestEventsChannel(t *testing.T) {
	f, c := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	events := c.Events(ctx)
	for i := range 3 {
		f.send(fmt.Sprintf(`{"event": "E%d", "data": {"id": "j%d"}}`, i, i))
	}
	for i := range 3 {
		e := <-events
		if e.Name != fmt.Sprintf("E%d", i) || e.Field("id") != fmt.Sprintf("j%d", i) {
			t.Errorf("event %d: %+v", i, e)
		}
	}
	cancel()
	for range events { // closed once ctx ends
	}
	wait := make(chan error, 1)
	go func() {
		_, err := c.WaitEvent(testContext(t, 5*time.Second), "JOB_STATUS_CHANGE", MatchField("status", "concluded"))
		wait <- err
	}()
	time.Sleep(50 * time.Millisecond) // WaitEvent subscribes when called
	f.send(`{"event": "JOB_STATUS_CHANGE", "data": {"id": "j", "status": "running"}}`)
	f.send(`{"event": "JOB_STATUS_CHANGE", "data": {"id": "j", "status": "concluded"}}`)
	if err := <-wait; err != nil {
		t.Error(err)
	}
}

func TestSubscriptionOverflow(t *testing.T) {
	f, c := newFake(t)
	sub := c.Subscribe()
	defer sub.Close()
	for i := range maxQueuedEvents + 1 {
		f.send(fmt.Sprintf(`{"event": "E", "data": {"n": %d}}`, i))
	}
	ctx := testContext(t, 5*time.Second)
	// A reply is dispatched after the events sent before it.
	ch := goExecute(ctx, c, "sync")
	_, id := f.recv()
	f.send(`{"return": "", "id": ` + id + `}`)
	<-ch
	for range maxQueuedEvents {
		if _, err := sub.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sub.Next(ctx); !errors.Is(err, ErrEventOverflow) {
		t.Fatalf("after overflow: %v", err)
	}
}

func TestDialGreetingTimeout(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", dir+"/silent.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, "unix://"+dir+"/silent.sock"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent server: %v", err)
	}
	if _, err := Dial(ctx, dir+"/missing.sock"); err == nil {
		t.Fatal("Dial of a missing socket succeeded")
	}
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct{ in, network, addr string }{
		{"unix:///run/qmp.sock", "unix", "/run/qmp.sock"},
		{"unix:/run/qmp.sock", "unix", "/run/qmp.sock"},
		{"/run/qmp.sock", "unix", "/run/qmp.sock"},
		{"rel/qmp.sock", "unix", "rel/qmp.sock"},
		{"tcp://127.0.0.1:4444", "tcp", "127.0.0.1:4444"},
		{"tcp:localhost:4444", "tcp", "localhost:4444"},
		{"http://x", "", ""},
		{"unix://", "", ""},
		{"", "", ""},
	} {
		n, a, err := parseAddress(tc.in)
		if n != tc.network || a != tc.addr || (err != nil) != (tc.network == "") {
			t.Errorf("parseAddress(%q) = %q, %q, %v", tc.in, n, a, err)
		}
	}
}

func TestDialTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		f := &fakeQMP{t: t, conn: conn, br: bufio.NewReader(conn)}
		f.send(`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 9}, "package": ""}, "capabilities": []}}`)
		for {
			b, err := readMessage(f.br, MaxMessageSize)
			if err != nil {
				return
			}
			var r struct{ ID json.RawMessage }
			_ = json.Unmarshal(b, &r)
			f.send(`{"return": {}, "id": ` + string(r.ID) + `}`)
		}
	}()
	ctx := testContext(t, 5*time.Second)
	c, err := Dial(ctx, "tcp://"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Greeting().Version.Major != 9 {
		t.Errorf("greeting %+v", c.Greeting())
	}
	if err := c.Execute(ctx, "query-version", nil, nil); err != nil {
		t.Fatal(err)
	}
}
