package qmp

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAgent speaks the guest agent protocol on a unix socket: 0xFF resets
// its parser, guest-sync-delimited replies after a 0xFF, no ids. A fresh
// connection first receives stale replies meant for an earlier client.
type fakeAgent struct {
	mu      sync.Mutex
	frozen  bool
	execs   map[int][]byte // pid → captured output
	polls   int
	syncs   int
	nextPID int
}

func startFakeAgent(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qga.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	fa := &fakeAgent{execs: map[int][]byte{}, nextPID: 100}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go fa.serve(conn)
		}
	}()
	return path
}

func (fa *fakeAgent) serve(conn net.Conn) {
	defer conn.Close()
	_, _ = conn.Write([]byte("{\"return\": {}}\n{\"return\": 4242}\n\xff{\"return\": 17}\n{\"retu"))
	br := bufio.NewReader(conn)
	for {
		b, err := readMessage(br, 1<<20)
		if errors.Is(err, ErrProtocol) {
			continue // a 0xFF inside a partial request: parser reset
		} else if err != nil {
			return
		}
		var req struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if json.Unmarshal(b, &req) != nil {
			_, _ = conn.Write([]byte(`{"error": {"class": "GenericError", "desc": "Invalid JSON syntax"}}` + "\n"))
			continue
		}
		if _, err := conn.Write(fa.handle(req.Execute, req.Arguments)); err != nil {
			return
		}
	}
}

func (fa *fakeAgent) handle(cmd string, args json.RawMessage) []byte {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	var a struct {
		ID    int64  `json:"id"`
		PID   int    `json:"pid"`
		Input []byte `json:"input-data"`
	}
	_ = json.Unmarshal(args, &a)
	ret := func(v any) []byte {
		b, _ := json.Marshal(map[string]any{"return": v})
		return append(b, '\n')
	}
	switch cmd {
	case "guest-sync-delimited":
		fa.syncs++
		return append([]byte{sentinel}, ret(a.ID)...)
	case "guest-ping":
		return ret(map[string]any{})
	case "guest-fsfreeze-freeze":
		fa.frozen = true
		return ret(2)
	case "guest-fsfreeze-thaw":
		fa.frozen = false
		return ret(2)
	case "guest-fsfreeze-status":
		return ret(map[bool]string{true: "frozen", false: "thawed"}[fa.frozen])
	case "guest-exec":
		fa.nextPID++
		fa.execs[fa.nextPID] = a.Input
		return ret(map[string]int{"pid": fa.nextPID})
	case "guest-exec-status":
		return fa.execStatus(a.PID)
	case "slow":
		time.Sleep(300 * time.Millisecond)
		return ret("late")
	}
	return []byte(fmt.Sprintf(`{"error": {"class": "CommandNotFound", "desc": "The command %s has not been found"}}`+"\n", cmd))
}

// execStatus reports a process as running on the first poll, then as exited
// with its input echoed to stdout.
func (fa *fakeAgent) execStatus(pid int) []byte {
	out, ok := fa.execs[pid]
	if !ok {
		return []byte(`{"error": {"class": "GenericError", "desc": "Invalid parameter 'pid'"}}` + "\n")
	}
	if fa.polls++; fa.polls%2 == 1 {
		return []byte(`{"return": {"exited": false}}` + "\n")
	}
	delete(fa.execs, pid)
	return []byte(fmt.Sprintf(`{"return": {"exited": true, "exitcode": 3, "out-data": %q, "err-data": "ZXJy"}}`+"\n",
		base64.StdEncoding.EncodeToString(out)))
}

func TestAgentFake(t *testing.T) {
	path := startFakeAgent(t)
	ctx := testContext(t, 10*time.Second)
	a, err := DialAgent(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := a.FsFreeze(ctx); n != 2 || err != nil {
		t.Fatalf("FsFreeze: %d, %v", n, err)
	}
	if s, err := a.FsFreezeStatus(ctx); s != "frozen" || err != nil {
		t.Fatalf("FsFreezeStatus: %q, %v", s, err)
	}
	if n, err := a.FsThaw(ctx); n != 2 || err != nil {
		t.Fatalf("FsThaw: %d, %v", n, err)
	}
	if s, _ := a.FsFreezeStatus(ctx); s != "thawed" {
		t.Fatalf("FsFreezeStatus after thaw: %q", s)
	}
	st, err := a.Run(ctx, ExecRequest{Path: "/bin/cat", Input: []byte("hello\x00\xff")}, time.Millisecond)
	if err != nil || !st.Exited || st.ExitCode != 3 || string(st.Stdout) != "hello\x00\xff" || string(st.Stderr) != "err" {
		t.Fatalf("Run: %+v, %v", st, err)
	}
	if _, err := a.ExecStatus(ctx, 1); !IsClass(err, ClassGenericError) {
		t.Fatalf("ExecStatus of an unknown pid: %v", err)
	}
	if err := a.Execute(ctx, "guest-nope", nil, nil); !IsClass(err, ClassCommandNotFound) {
		t.Fatalf("unknown command: %v", err)
	}
}

// A timed-out command leaves its reply in flight; the next call resyncs
// and does not mistake the late reply for its own.
func TestAgentResyncAfterTimeout(t *testing.T) {
	path := startFakeAgent(t)
	a, err := DialAgent(testContext(t, 5*time.Second), path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Execute(short, "slow", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow: %v", err)
	}
	var s string
	if err := a.Execute(testContext(t, 5*time.Second), "guest-fsfreeze-status", nil, &s); err != nil || s != "thawed" {
		t.Fatalf("after a timeout: %q, %v", s, err)
	}
	// Close interrupts a call in progress.
	time.AfterFunc(50*time.Millisecond, func() { a.Close() })
	if err := a.Execute(context.Background(), "slow", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("slow call interrupted by Close: %v", err)
	}
	if err := a.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
}

func TestAwaitSync(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"\xff{\"return\": 7}\n", true},
		{"{\"return\": 7}\n\xff{\"return\": 7}", true},              // no sentinel before the first
		{"junk\xff{\"return\": 5}\n\xff{\"return\": 7}\n", true},    // older sync
		{"\xff{\"retu\xff{\"return\": 7}\n", true},                  // cut by a sentinel
		{"\xff[1]\xff}{\xff{\"return\": 7}", true},                  // garbage after sentinels
		{"\xff{\"return\": \"7\"}\n", false},                        // wrong type: EOF
		{"\xff{\"error\": {\"class\": \"GenericError\"}}\n", false}, // agent error
		{"", false},
	} {
		err := awaitSync(bufio.NewReader(strings.NewReader(tc.in)), 7)
		if (err == nil) != tc.ok {
			t.Errorf("awaitSync(%q) = %v", tc.in, err)
		}
	}
}
