package vsphere

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// ErrNoTransport is matched when no transport could open a disk.
var ErrNoTransport = errors.New("no transport can read the disk")

// openAuto opens one snapshot disk with the preferred transport, or for
// auto with the first of the transports (in order) that opens it. why
// says which one served the disk and why the ones before it did not.
func openAuto(ctx context.Context, env *Env, pref source.Transport, ts []Transport, d SnapshotDisk) (source.Disk, source.Transport, string, error) {
	if pref != source.TransportAuto {
		t := byName(ts, pref)
		if t == nil {
			return nil, "", fmt.Sprintf("%s: not configured", pref), fmt.Errorf("%w: transport %s is not configured here (configured: %s)",
				ErrNoTransport, pref, transportList(ts))
		}
		disk, err := t.Open(ctx, env, d)
		if err != nil {
			return nil, "", fmt.Sprintf("%s: failed (%v)", pref, err), fmt.Errorf("transport %s: %w", pref, err)
		}
		return disk, pref, fmt.Sprintf("%s: used (asked for)", pref), nil
	}
	var why []string
	for _, name := range autoOrder() {
		t := byName(ts, name)
		if t == nil {
			why = append(why, string(name)+": not configured")
			continue
		}
		disk, err := t.Open(ctx, env, d)
		if err == nil {
			why = append(why, string(name)+": used")
			return disk, name, strings.Join(why, "; "), nil
		}
		if ctx.Err() != nil {
			return nil, "", strings.Join(why, "; "), ctx.Err()
		}
		why = append(why, fmt.Sprintf("%s: not possible (%v)", name, err))
		env.Logger.Info("transport cannot read the disk, trying the next", "transport", name, "disk", d.File.String(), "err", err)
	}
	return nil, "", strings.Join(why, "; "), fmt.Errorf("%w: %s", ErrNoTransport, strings.Join(why, "; "))
}

// autoOrder is the order auto tries the transports in.
func autoOrder() []source.Transport {
	return []source.Transport{source.TransportDirect, source.TransportHotAdd, source.TransportNBD}
}

func byName(ts []Transport, name source.Transport) Transport {
	for _, t := range ts {
		if t.Name() == name {
			return t
		}
	}
	return nil
}

func transportList(ts []Transport) string {
	names := make([]source.Transport, len(ts))
	for i, t := range ts {
		names[i] = t.Name()
	}
	return source.JoinTransports(names, ", ")
}
