package main

import (
	"fmt"
	"io"
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
	Done()
}

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
		return &barProgress{p: p, bar: bar}
	}
	lp := &lineProgress{w: w, label: label, total: total, start: clock.Real().Now(), stop: make(chan struct{})}
	lp.wg.Add(1)
	go lp.loop(10 * time.Second)
	return lp
}

type barProgress struct {
	p   *mpb.Progress
	bar *mpb.Bar
}

func (b *barProgress) Add(n int64) { b.bar.IncrInt64(n) }
func (b *barProgress) Done() {
	b.bar.SetTotal(-1, true)
	b.p.Wait()
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

func (l *lineProgress) Done() {
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
