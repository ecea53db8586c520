package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/holdfast-backup/holdfast/internal/publish"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// publishMount publishes a point on this proxy — the mount server — for
// `holdfast publish` through the server: its filesystems mounted
// read-only here (internal/publish), chunks from the repository agent,
// until the server stops the session; then everything is undone. The
// session's record is under the proxy's state directory, so `holdfast
// publish cleanup --state-dir STATE/publish` on this host removes what a
// killed proxy left.
func (p *Proxy) publishMount(ctx context.Context, at *attempt, m *repo.Manifest) (taskproto.Result, error) {
	spec := at.spec
	var res taskproto.Result
	if p.o.StateDir == "" {
		return res, errors.New("this proxy has no state directory for publish records")
	}
	if os.Geteuid() != 0 {
		return res, errors.New("this proxy does not run as root: it cannot publish (FUSE, loop devices, mounts)")
	}
	c, err := p.repository(ctx, spec)
	if err != nil {
		return res, err
	}
	defer c.Close()
	at.client.Store(c)
	s, err := publish.Publish(ctx, publish.Options{ID: publish.ServerID(spec.SessionID), Store: c, Holder: c, Point: m,
		MountDir: spec.Mount.MountDir, StateDir: filepath.Join(p.o.StateDir, "publish"), Logger: p.log, Clock: p.o.Clock})
	if err != nil {
		return res, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return res, errors.Join(err, s.Close(context.WithoutCancel(ctx)))
	}
	at.info.Store(&b)
	gone := make(chan struct{})
	go func() { s.Wait(); close(gone) }()
	select {
	case <-ctx.Done():
	case <-gone:
		err = fmt.Errorf("publish %s: the FUSE mount of the disks went away", s.ID)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if cerr := s.Close(cctx); cerr != nil {
		p.log.Error("unpublish", "session", s.ID, "err", cerr)
		return res, errors.Join(err, cerr)
	}
	if err != nil {
		return res, err
	}
	return res, ctx.Err() // stopped by the server
}
