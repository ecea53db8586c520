package main

import (
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// progress shows how far a long operation is: a bar with rate and ETA on a
// terminal, a plain line every interval otherwise.
type progress interface {
	Add(n int64)
	// Done ends the display: complete when err is nil, else stopped where
	// it stands. It never keeps an interrupted command from returning: it
	// waits at most barGrace for the terminal.
	Done(err error)
}

// barGrace bounds how long the end of a progress display may wait for the
// terminal (a blocked terminal, XOFF, a stuck renderer) before the command
// goes on without it.
const barGrace = time.Second

func newProgress(w io.Writer, label string, total int64) progress {
	if isTerminal(w) {
		p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
		bar := p.AddBar(total,
			mpb.PrependDecorators(decor.Name(label+" ", decor.WCSyncSpaceR),
				decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")),
			mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace),
				decor.AverageSpeed(decor.SizeB1024(0), " % .1f", decor.WCSyncSpace),
				decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_GO)),
		)
		return &barProgress{p: p, bar: bar, clock: clock.Real()}
	}
	lp := &lineProgress{w: w, label: label, total: total, start: clock.Real().Now(), stop: make(chan struct{})}
	lp.wg.Add(1)
	go lp.loop(10 * time.Second)
	return lp
}

type barProgress struct {
	p     *mpb.Progress
	bar   *mpb.Bar
	clock clock.Clock
}

func (b *barProgress) Add(n int64) { b.bar.IncrInt64(n) }
func (b *barProgress) Done(err error) {
	endBar(b.bar, err == nil)
	waitBars(b.p, b.clock, barGrace)
}

// endBar ends a bar: complete when ok (at its total, or where it stands if
// it was made without one), else aborted where it stands and left on the
// screen. (mpb's SetTotal does nothing to a bar made with a total, and
// Progress.Wait waits for every bar to end: an interrupted bar that is
// neither completed nor aborted hangs it for ever.)
func endBar(bar *mpb.Bar, ok bool) {
	if !ok {
		bar.Abort(false)
		return
	}
	bar.SetTotal(-1, true)
	bar.SetCurrent(math.MaxInt64)
}

// waitBars waits for p to draw its ended bars and shut down, at most grace:
// after that it shuts p down without waiting, and a renderer stuck writing
// to the terminal stays behind rather than the command.
func waitBars(p *mpb.Progress, c clock.Clock, grace time.Duration) bool {
	done := make(chan struct{})
	go func() {
		p.Wait()
		close(done)
	}()
	t := c.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C():
		go p.Shutdown()
		return false
	}
}

type lineProgress struct {
	w     io.Writer
	label string
	total int64
	done  atomic.Int64
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

func (l *lineProgress) Add(n int64) { l.done.Add(n) }

func (l *lineProgress) Done(error) {
	close(l.stop)
	l.wg.Wait()
}

func (l *lineProgress) loop(every time.Duration) {
	defer l.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			done := l.done.Load()
			el := clock.Real().Since(l.start).Seconds() // the ticker above runs on the real clock too
			rate := float64(done) / el
			eta := "?"
			if rate > 0 {
				eta = (time.Duration(float64(l.total-done)/rate) * time.Second).Round(time.Second).String()
			}
			pct := 0.0
			if l.total > 0 {
				pct = 100 * float64(done) / float64(l.total)
			}
			fmt.Fprintf(l.w, "%s: %s / %s (%.0f%%), %s/s, ETA %s\n", l.label, formatBytes(done),
				formatBytes(l.total), pct, formatBytes(int64(rate)), eta)
		}
	}
}
