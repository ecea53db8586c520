package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// followSession shows a session's tasks live until it ends, then its
// result; a failed session is an error (exit 1).
func (a *app) followSession(ctx context.Context, cl *apiClient, id int64) error {
	var v sessionView
	if isTerminal(a.stdout) {
		v = newBarView(a.stdout, a.clock)
	} else {
		v = &lineView{w: a.stdout, state: map[int64]string{}, every: 2 * time.Second, clock: a.clock}
	}
	se, err := a.pollSession(ctx, cl, id, v.update)
	v.done()
	if err != nil {
		return err
	}
	var res sessionResult
	_ = json.Unmarshal(se.Result, &res)
	a.printResult(se, res)
	if se.State == "failed" || se.State == "cancelled" {
		return sessionFailed{id: se.ID, state: se.State, msg: res.Error}
	}
	return nil
}

// sessionView renders a followed session.
type sessionView interface {
	update(se apitypes.Session)
	done()
}

func taskLabel(t apitypes.Task) string { return fmt.Sprintf("%s disk %s", t.VM, t.Disk) }

func terminalTask(state string) bool {
	switch state {
	case "success", "warning", "failed", "cancelled":
		return true
	}
	return false
}

// barView is one progress bar per task.
type barView struct {
	p     *mpb.Progress
	bars  map[int64]*mpb.Bar
	end   map[int64]bool
	clock clock.Clock
}

func newBarView(w io.Writer, c clock.Clock) *barView {
	return &barView{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithRefreshRate(200*time.Millisecond)),
		bars: map[int64]*mpb.Bar{}, end: map[int64]bool{}, clock: c}
}

func (v *barView) update(se apitypes.Session) {
	for _, t := range se.Tasks {
		if v.end[t.ID] {
			continue
		}
		bar := v.bars[t.ID]
		if bar == nil {
			if t.BytesTotal <= 0 && !terminalTask(t.State) {
				continue // not started: size unknown yet
			}
			state := t.State
			bar = v.p.AddBar(max(t.BytesTotal, 1),
				mpb.PrependDecorators(decor.Name(taskLabel(t)+" ", decor.WCSyncSpaceR),
					decor.Any(func(decor.Statistics) string { return orDash(t.Proxy) }, decor.WCSyncSpaceR),
					decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")),
				mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace),
					decor.AverageSpeed(decor.SizeB1024(0), " % .1f", decor.WCSyncSpace),
					decor.Any(func(decor.Statistics) string { return " " + state })))
			v.bars[t.ID] = bar
		}
		bar.SetCurrent(t.BytesDone)
		if terminalTask(t.State) {
			v.end[t.ID] = true
			endBar(bar, t.State != "failed" && t.State != "cancelled")
		}
	}
}

func (v *barView) done() {
	for id, bar := range v.bars {
		if !v.end[id] {
			endBar(bar, false)
		}
	}
	waitBars(v.p, v.clock, barGrace)
}

// lineView prints state changes at once and running tasks' progress every
// few seconds (logs, pipes).
type lineView struct {
	w     io.Writer
	state map[int64]string
	every time.Duration
	last  time.Time
	clock clock.Clock
}

func (v *lineView) update(se apitypes.Session) {
	now := v.clock.Now()
	progress := now.Sub(v.last) >= v.every
	if progress {
		v.last = now
	}
	for _, t := range se.Tasks {
		label := taskLabel(t)
		if v.state[t.ID] != t.State {
			v.state[t.ID] = t.State
			switch {
			case t.State == "running":
				fmt.Fprintf(v.w, "%s: running on %s (%s, attempt %d)\n", label, orDash(t.Proxy), orDash(t.Transport), t.Attempt)
			case t.Error != "":
				fmt.Fprintf(v.w, "%s: %s: %s\n", label, t.State, t.Error)
			default:
				fmt.Fprintf(v.w, "%s: %s\n", label, t.State)
			}
			continue
		}
		if progress && t.State == "running" && t.BytesTotal > 0 {
			fmt.Fprintf(v.w, "%s: %s of %s (%.0f%%)\n", label, formatBytes(t.BytesDone), formatBytes(t.BytesTotal),
				100*float64(t.BytesDone)/float64(t.BytesTotal))
		}
	}
}

func (v *lineView) done() {}
