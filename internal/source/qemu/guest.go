package qemu

import (
	"context"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/qmp"
)

// quiescer freezes the guest file systems around the snapshot through the
// QEMU guest agent. Every failure is a warning: the backup goes on crash
// consistent and says why.
type quiescer struct {
	path    string
	timeout time.Duration
	agent   *qmp.Agent
	frozen  bool
	Result  string // for the manifest and the session output
}

// freeze connects to the agent, thaws a guest left frozen by a killed run,
// and freezes. It never fails the backup.
func (q *quiescer) freeze(ctx context.Context) {
	if q.path == "" {
		q.Result = "not frozen: no guest agent configured"
		return
	}
	cctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	a, err := qmp.DialAgent(cctx, q.path)
	if err != nil {
		q.Result = fmt.Sprintf("not frozen: guest agent not reachable: %v", err)
		return
	}
	q.agent = a
	if st, err := a.FsFreezeStatus(cctx); err == nil && st == "frozen" {
		_, _ = a.FsThaw(cctx) // left frozen by a killed run
	}
	n, err := a.FsFreeze(cctx)
	if err != nil {
		q.Result = fmt.Sprintf("not frozen: guest-fsfreeze-freeze failed: %v", err)
		q.thaw(ctx) // a partial freeze must not stay
		return
	}
	q.frozen = true
	q.Result = fmt.Sprintf("frozen (%d file systems)", n)
}

// thaw undoes freeze; it is safe to call more than once and uses its own
// timeout so it runs even when ctx is cancelled.
func (q *quiescer) thaw(ctx context.Context) {
	if q.agent == nil {
		return
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.timeout)
	defer cancel()
	if _, err := q.agent.FsThaw(tctx); err != nil && q.frozen {
		q.Result += fmt.Sprintf("; THAW FAILED: %v", err)
	}
	q.frozen = false
	q.agent.Close()
	q.agent = nil
}
