package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// agentTimeout bounds the freeze and the thaw each. libvirt has no
// "quiesce" flag for virDomainBackupBegin (only REUSE_EXTERNAL), so the
// guest is frozen with virDomainFSFreeze before the job starts and thawed
// with virDomainFSThaw right after.
const agentTimeout = 30 * time.Second

// errAgentTimeout is the cause of a guest agent call that did not answer
// in time.
var errAgentTimeout = errors.New("the guest agent did not answer in time")

// freezer is the part of libvirt that quiescing uses.
type freezer interface {
	DomainFsfreeze(dom golibvirt.Domain, mountpoints []string, flags uint32) (int32, error)
	DomainFsthaw(dom golibvirt.Domain, mountpoints []string, flags uint32) (int32, error)
}

// quiescer freezes a domain's file systems around begin.
type quiescer struct {
	fz      freezer
	dom     golibvirt.Domain
	name    string
	timeout time.Duration
	log     *slog.Logger
}

// run calls begin with the guest's file systems frozen, best effort: when
// the freeze fails (no guest agent, agent not answering) begin still runs,
// crash-consistent, and the note and a warning say why. Once a freeze was
// tried the guest is thawed on every path (begin failed, ctx cancelled, the
// freeze timed out and might still land), bounded by the timeout and not
// by ctx. note goes into the manifest (guest_quiesce).
func (q *quiescer) run(ctx context.Context, begin func() error) (note string, err error) {
	n, ferr := q.call(ctx, q.fz.DomainFsfreeze)
	if ferr != nil {
		note = fmt.Sprintf("crash-consistent: the guest agent could not freeze the file systems (%v)", ferr)
		q.log.Warn("quiescing failed; the restore point is crash-consistent", "domain", q.name, "err", ferr)
		if errors.Is(ferr, errAgentTimeout) || ctx.Err() != nil {
			note += q.thaw(ctx) // the freeze may still happen
		}
	} else {
		note = fmt.Sprintf("frozen through the guest agent (%d file systems)", n)
	}
	if err = ctx.Err(); err == nil {
		err = begin()
	}
	if ferr == nil {
		note += q.thaw(ctx)
	}
	return note, err
}

// thaw thaws the guest, bounded by the timeout even when ctx is cancelled;
// a failure is logged as an error and returned as a note suffix.
func (q *quiescer) thaw(ctx context.Context) string {
	_, err := q.call(context.WithoutCancel(ctx), q.fz.DomainFsthaw)
	if err == nil {
		return ""
	}
	q.log.Error("THAW FAILED: the guest's file systems may still be frozen (virsh domfsthaw)", "domain", q.name, "err", err)
	return fmt.Sprintf("; THAW FAILED: %v", err)
}

// call runs one guest agent call bounded by ctx and the timeout. go-libvirt
// calls take no context: one that does not answer in time is left to
// finish in the background.
func (q *quiescer) call(ctx context.Context, fn func(golibvirt.Domain, []string, uint32) (int32, error)) (int32, error) {
	type result struct {
		n   int32
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := fn(q.dom, nil, 0)
		done <- result{n, err}
	}()
	t := time.NewTimer(q.timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.n, r.err
	case <-t.C:
		return 0, fmt.Errorf("%w (%s)", errAgentTimeout, q.timeout)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
