package guest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// fakeAgent answers the QEMU guest agent protocol on a unix socket and
// runs guest-exec commands on the test machine, standing in for qemu-ga in
// a guest: guest-sync-delimited, guest-exec (input-data, capture-output)
// and guest-exec-status. It records the commands it receives.
type fakeAgent struct {
	mu    sync.Mutex
	cmds  []string
	procs map[int]*fakeProc
}

type fakeProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
}

func startFakeAgent(t *testing.T) (*fakeAgent, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qga.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAgent{procs: map[int]*fakeProc{}}
	t.Cleanup(func() {
		l.Close()
		fa.mu.Lock()
		defer fa.mu.Unlock()
		for _, p := range fa.procs {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go fa.serve(c)
		}
	}()
	return fa, path
}

func (fa *fakeAgent) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		var req struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if json.Unmarshal(bytes.TrimLeft(line, "\xff"), &req) != nil {
			continue
		}
		fa.mu.Lock()
		fa.cmds = append(fa.cmds, req.Execute)
		fa.mu.Unlock()
		if _, err := c.Write(fa.handle(req.Execute, req.Arguments)); err != nil {
			return
		}
	}
}

func (fa *fakeAgent) handle(cmd string, args json.RawMessage) []byte {
	var a struct {
		ID      int64    `json:"id"`
		PID     int      `json:"pid"`
		Path    string   `json:"path"`
		Arg     []string `json:"arg"`
		Input   []byte   `json:"input-data"`
		Capture bool     `json:"capture-output"`
	}
	_ = json.Unmarshal(args, &a)
	ret := func(v any) []byte {
		b, _ := json.Marshal(map[string]any{"return": v})
		return append(b, '\n')
	}
	fail := func(desc string) []byte {
		b, _ := json.Marshal(map[string]any{"error": map[string]string{"class": "GenericError", "desc": desc}})
		return append(b, '\n')
	}
	switch cmd {
	case "guest-sync-delimited":
		return append([]byte{0xff}, ret(a.ID)...)
	case "guest-exec":
		p := &fakeProc{cmd: exec.Command(a.Path, a.Arg...), done: make(chan struct{})}
		p.cmd.Stdin = bytes.NewReader(a.Input)
		if a.Capture {
			p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		}
		if err := p.cmd.Start(); err != nil {
			return fail(err.Error())
		}
		go func() { _ = p.cmd.Wait(); close(p.done) }()
		fa.mu.Lock()
		fa.procs[p.cmd.Process.Pid] = p
		fa.mu.Unlock()
		return ret(map[string]int{"pid": p.cmd.Process.Pid})
	case "guest-exec-status":
		fa.mu.Lock()
		p, ok := fa.procs[a.PID]
		fa.mu.Unlock()
		if !ok {
			return fail("Invalid parameter 'pid'")
		}
		select {
		case <-p.done:
		default:
			return ret(map[string]bool{"exited": false})
		}
		fa.mu.Lock()
		delete(fa.procs, a.PID)
		fa.mu.Unlock()
		st := map[string]any{"exited": true, "out-data": p.stdout.Bytes(), "err-data": p.stderr.Bytes()}
		ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			st["signal"] = int(ws.Signal())
		} else {
			st["exitcode"] = ws.ExitStatus()
		}
		return ret(st)
	}
	return fail("The command " + cmd + " has not been found")
}

// commands returns the commands received so far, space separated.
func (fa *fakeAgent) commands() string {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return strings.Join(fa.cmds, " ")
}
