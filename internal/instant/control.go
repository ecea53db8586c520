package instant

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// The control socket: a serving process answers other processes (list,
// stop, migrate) on a unix socket next to its record, ID.ctl in the
// registry directory (mode 0700). A request is one JSON line, the answer
// one JSON line:
//
//	{"op":"clients"}  →  {"clients":[…]}
//	{"op":"stop"}     →  {"stopping":true} (the process then ends as on SIGTERM)
//	                     or {"clients":[…]} (it has clients and serves on)
//
// While it decides a stop, new NBD connections are refused, so no client
// slips in between the check and the stop.

// controlRequest and controlReply are the control socket's messages.
type controlRequest struct {
	Op string `json:"op"`
}

type controlReply struct {
	Clients  []Client `json:"clients"`
	Stopping bool     `json:"stopping,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// controlTimeout bounds one exchange on the control socket.
const controlTimeout = 10 * time.Second

func (r Registry) controlPath(id string) string { return filepath.Join(r.Dir, id+".ctl") }

// vmNBDPath is the unix socket on which a session's own VM reaches the NBD
// exports (so its connections are told apart from other clients').
func (r Registry) vmNBDPath(id string) string { return filepath.Join(r.Dir, id+".nbd") }

// listenUnix listens on a fresh unix socket at path (a stale one from a
// process that died is removed first) in the registry directory.
func (r Registry) listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return nil, err
	}
	_ = os.Remove(path)
	return net.Listen("unix", path)
}

// serveControl answers the control socket until ctx ends; stop ends the
// session.
func (s *session) serveControl(ctx context.Context, ln net.Listener, stop func()) {
	context.AfterFunc(ctx, func() { _ = ln.Close() })
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go s.answerControl(conn, stop)
	}
}

func (s *session) answerControl(conn net.Conn, stop func()) {
	defer conn.Close()
	_ = conn.SetDeadline(clock.Deadline(controlTimeout))
	var req controlRequest
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	var rep controlReply
	switch {
	case err != nil || json.Unmarshal(line, &req) != nil:
		rep.Error = "bad request"
	case req.Op == "clients":
		rep.Clients = s.clients()
	case req.Op == "stop":
		s.closing.Store(true) // new NBD connections are refused from here on
		if rep.Clients = s.clients(); len(rep.Clients) > 0 {
			s.closing.Store(false)
		} else {
			rep.Stopping = true
			stop()
		}
	default:
		rep.Error = fmt.Sprintf("unknown operation %q", req.Op)
	}
	b, _ := json.Marshal(rep)
	_, _ = conn.Write(append(b, '\n'))
}

// ErrNoControl means a serving session's process does not answer on its
// control socket (a process of an older Holdfast, or a socket path too
// long): its clients are not known.
var ErrNoControl = errors.New("the session's process does not answer on its control socket")

// ask sends one request to session id's control socket.
func (r Registry) ask(ctx context.Context, id, op string) (controlReply, error) {
	var rep controlReply
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", r.controlPath(id))
	if err != nil {
		return rep, fmt.Errorf("session %s: %w (%v)", id, ErrNoControl, err)
	}
	defer conn.Close()
	context.AfterFunc(ctx, func() { _ = conn.Close() })
	b, _ := json.Marshal(controlRequest{Op: op})
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return rep, fmt.Errorf("session %s: %w (%v)", id, ErrNoControl, err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return rep, fmt.Errorf("session %s: %w (%v)", id, ErrNoControl, err)
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		return rep, fmt.Errorf("session %s: control answer: %w", id, err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("session %s: %s", id, rep.Error)
	}
	return rep, nil
}

// Clients returns the clients of session id's exports (none when it does
// not serve), leaving out the session's own VM.
func (r Registry) Clients(ctx context.Context, id string) ([]Client, error) {
	rec, err := r.Load(id)
	if err != nil || rec.State() != "serving" {
		return nil, err
	}
	rep, err := r.ask(ctx, rec.ID, "clients")
	return rep.Clients, err
}
