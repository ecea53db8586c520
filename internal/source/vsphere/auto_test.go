package vsphere

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// fakeTransport opens every disk, or fails with err.
type fakeTransport struct {
	name   source.Transport
	err    error
	opened *int
}

func (f fakeTransport) Name() source.Transport { return f.name }

func (f fakeTransport) Open(context.Context, *Env, SnapshotDisk) (source.Disk, error) {
	*f.opened++
	if f.err != nil {
		return nil, f.err
	}
	return nil, nil
}

func TestOpenAuto(t *testing.T) {
	env := &Env{Logger: slog.New(slog.DiscardHandler)}
	direct := func(n *int) Transport {
		return fakeTransport{name: source.TransportDirect, err: errors.New("datastore LocalDS_0 is not mounted here"), opened: n}
	}
	hotadd := func(n *int) Transport { return fakeTransport{name: source.TransportHotAdd, opened: n} }
	nbdT := func(n *int) Transport { return fakeTransport{name: source.TransportNBD, opened: n} }
	tests := []struct {
		name   string
		pref   source.Transport
		ts     func(n *int) []Transport
		used   source.Transport
		why    string
		err    error
		opened int
	}{
		{name: "first that opens", pref: source.TransportAuto, ts: func(n *int) []Transport { return []Transport{direct(n), hotadd(n), nbdT(n)} },
			used: source.TransportHotAdd, why: "direct: not possible (datastore LocalDS_0 is not mounted here); hotadd: used", opened: 2},
		{name: "not configured", pref: source.TransportAuto, ts: func(n *int) []Transport { return []Transport{direct(n), nbdT(n)} },
			used: source.TransportNBD, why: "direct: not possible (datastore LocalDS_0 is not mounted here); hotadd: not configured; nbd: used", opened: 2},
		{name: "none opens", pref: source.TransportAuto, ts: func(n *int) []Transport { return []Transport{direct(n)} },
			why: "direct: not possible (datastore LocalDS_0 is not mounted here); hotadd: not configured; nbd: not configured", err: ErrNoTransport, opened: 1},
		{name: "asked for", pref: source.TransportNBD, ts: func(n *int) []Transport { return []Transport{direct(n), nbdT(n)} },
			used: source.TransportNBD, why: "nbd: used (asked for)", opened: 1},
		{name: "asked for, fails", pref: source.TransportDirect, ts: func(n *int) []Transport { return []Transport{direct(n), nbdT(n)} },
			why: "direct: failed (datastore LocalDS_0 is not mounted here)", opened: 1},
		{name: "asked for, absent", pref: source.TransportHotAdd, ts: func(n *int) []Transport { return []Transport{nbdT(n)} },
			why: "hotadd: not configured", err: ErrNoTransport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opened := 0
			_, used, why, err := openAuto(context.Background(), env, tc.pref, tc.ts(&opened), SnapshotDisk{})
			if used != tc.used || why != tc.why || opened != tc.opened {
				t.Errorf("used %q, why %q, %d opened; want %q, %q, %d", used, why, opened, tc.used, tc.why, tc.opened)
			}
			if tc.used == "" && err == nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("error %v, want %v", err, tc.err)
			}
		})
	}
}
