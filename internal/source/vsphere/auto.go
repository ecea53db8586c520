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
		for _, t := range ts {
			if t.Name() != pref {
				continue
			}
			disk, err := t.Open(ctx, env, d)
			if err != nil {
				return nil, "", fmt.Sprintf("%s: failed (%v)", pref, err), fmt.Errorf("transport %s: %w", pref, err)
			}
			return disk, pref, fmt.Sprintf("%s: used (asked for)", pref), nil
		}
		return nil, "", fmt.Sprintf("%s: not available", pref), fmt.Errorf("%w: transport %s is not available here (available: %s)",
			ErrNoTransport, pref, transportList(ts))
	}
	var why []string
	for _, t := range ts {
		disk, err := t.Open(ctx, env, d)
		if err == nil {
			why = append(why, string(t.Name())+": used")
			return disk, t.Name(), strings.Join(why, "; "), nil
		}
		if ctx.Err() != nil {
			return nil, "", strings.Join(why, "; "), ctx.Err()
		}
		why = append(why, fmt.Sprintf("%s: not possible (%v)", t.Name(), err))
		env.Logger.Info("transport cannot read the disk, trying the next", "transport", t.Name(), "disk", d.File.String(), "err", err)
	}
	return nil, "", strings.Join(why, "; "), fmt.Errorf("%w: %s", ErrNoTransport, strings.Join(why, "; "))
}

func transportList(ts []Transport) string {
	names := make([]source.Transport, len(ts))
	for i, t := range ts {
		names[i] = t.Name()
	}
	return source.JoinTransports(names, ", ")
}
