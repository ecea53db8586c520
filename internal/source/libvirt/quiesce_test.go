package libvirt

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// fakeFreezer records the order of guest agent calls and begin.
type fakeFreezer struct {
	mu                 sync.Mutex
	calls              []string
	freezeErr, thawErr error
	freezeBlock        chan struct{} // freeze waits on it when set
}

func (f *fakeFreezer) note(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeFreezer) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeFreezer) DomainFsfreeze(golibvirt.Domain, []string, uint32) (int32, error) {
	if f.freezeBlock != nil {
		<-f.freezeBlock
	}
	f.note("freeze")
	return 2, f.freezeErr
}

func (f *fakeFreezer) DomainFsthaw(golibvirt.Domain, []string, uint32) (int32, error) {
	f.note("thaw")
	return 2, f.thawErr
}

func TestQuiesceOrder(t *testing.T) {
	errBegin := errors.New("begin failed")
	noAgent := errors.New("argument unsupported: QEMU guest agent is not configured")
	tests := []struct {
		name       string
		fz         *fakeFreezer
		beginErr   error
		cancel     bool
		want       []string
		note, warn string
		wantErr    error
	}{
		{name: "frozen", fz: &fakeFreezer{}, want: []string{"freeze", "begin", "thaw"}, note: "frozen through the guest agent (2 file systems)"},
		{name: "begin fails", fz: &fakeFreezer{}, beginErr: errBegin, want: []string{"freeze", "begin", "thaw"}, wantErr: errBegin},
		{name: "no agent", fz: &fakeFreezer{freezeErr: noAgent}, want: []string{"freeze", "begin"},
			note: "crash-consistent: the guest agent could not freeze the file systems (argument unsupported", warn: "quiescing failed"},
		{name: "thaw fails", fz: &fakeFreezer{thawErr: errors.New("agent gone")}, want: []string{"freeze", "begin", "thaw"},
			note: "frozen through the guest agent (2 file systems); THAW FAILED: agent gone", warn: "THAW FAILED"},
		{name: "cancelled", fz: &fakeFreezer{}, cancel: true, want: []string{"freeze", "thaw"}, wantErr: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			q := &quiescer{fz: tc.fz, name: "d", timeout: time.Minute, log: slog.New(slog.NewTextHandler(&log, nil))}
			if tc.cancel {
				q.fz = &cancellingFreezer{fakeFreezer: tc.fz, cancel: cancel}
			}
			note, err := q.run(ctx, func() error { tc.fz.note("begin"); return tc.beginErr })
			if got := tc.fz.got(); !slices.Equal(got, tc.want) {
				t.Fatalf("calls %v, want %v", got, tc.want)
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if !strings.HasPrefix(note, tc.note) {
				t.Fatalf("note %q, want %q", note, tc.note)
			}
			if !strings.Contains(log.String(), tc.warn) {
				t.Fatalf("log %q, want %q", log.String(), tc.warn)
			}
		})
	}
}

// cancellingFreezer cancels the context once the guest is frozen, as a
// Ctrl-C between the freeze and the start of the job.
type cancellingFreezer struct {
	*fakeFreezer
	cancel func()
}

func (f *cancellingFreezer) DomainFsfreeze(d golibvirt.Domain, m []string, fl uint32) (int32, error) {
	n, err := f.fakeFreezer.DomainFsfreeze(d, m, fl)
	f.cancel()
	return n, err
}

// TestQuiesceFreezeTimeout: a freeze that does not answer in time is given
// up (crash-consistent), and the guest is thawed in case it lands later.
func TestQuiesceFreezeTimeout(t *testing.T) {
	fz := &fakeFreezer{freezeBlock: make(chan struct{})}
	defer close(fz.freezeBlock)
	q := &quiescer{fz: fz, name: "d", timeout: time.Millisecond, log: slog.New(slog.DiscardHandler)}
	note, err := q.run(context.Background(), func() error { fz.note("begin"); return nil })
	if err != nil || !strings.Contains(note, "did not answer in time") {
		t.Fatalf("note %q err %v", note, err)
	}
	if got := fz.got(); !slices.Equal(got, []string{"thaw", "begin"}) {
		t.Fatalf("calls %v, want thaw before begin", got)
	}
}
