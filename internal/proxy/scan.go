package proxy

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/holdfast-backup/holdfast/internal/publish"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/scan"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/textsafe"
)

// scanMount scans a point for malware on this proxy — the mount server —
// after a backup committed it (a job's scan_after): it publishes the
// point in this process (internal/publish, chunks from the repository
// agent, the point held meanwhile), runs the engine over the mounted
// guest filesystems, unpublishes it, and records a clean or infected
// result on the point through the agent (which keeps an existing record
// of the engine). The outcome is Result.Scan; a scan that could not run
// is a result too (ScanFailed with the reason), not a task error.
func (p *Proxy) scanMount(ctx context.Context, at *attempt, m *repo.Manifest) (taskproto.Result, error) {
	spec := at.spec
	sa := spec.Mount.Scan
	out := &taskproto.ScanResult{Engine: sa.EngineName(), Result: repo.ScanFailed}
	res := taskproto.Result{Scan: out}
	notScanned := func(err error) (taskproto.Result, error) {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		out.Error = textsafe.Escape(err.Error()) // may name guest volumes
		return res, nil
	}
	switch {
	case p.o.StateDir == "":
		return notScanned(errors.New("the mount server has no state directory for publish records"))
	case os.Geteuid() != 0:
		return notScanned(errors.New("the mount server does not run as root: it cannot publish (FUSE, loop devices, mounts)"))
	}
	eng, err := scan.New(ctx, scan.Options{Engine: sa.EngineName(), ClamAVDB: sa.ClamAVDB, YaraRules: sa.YaraRules, Clock: p.o.Clock})
	if err != nil {
		return notScanned(err)
	}
	out.EngineVersion = eng.Version()
	c, err := p.repository(ctx, spec)
	if err != nil {
		return notScanned(err)
	}
	defer c.Close()
	at.client.Store(c)
	chk := &scan.Checker{Engine: eng, Mount: scan.Published(publish.Options{Store: c, Holder: c,
		StateDir: filepath.Join(p.o.StateDir, "publish"), Logger: p.log, Clock: p.o.Clock})}
	rep, err := chk.ScanPoint(ctx, m)
	if rep.Result == "" {
		return notScanned(err)
	}
	if err != nil { // the scan ran; unpublishing failed
		p.log.Warn("scan: unpublish failed (publish cleanup undoes what is left)", "point", m.ID, "error", textsafe.Escape(err.Error()))
		res.Warnings = append(res.Warnings, textsafe.Escape(err.Error()))
	}
	out.Result, out.Findings, out.Error = rep.Result, rep.Count, rep.Error
	if len(rep.Findings) > 0 {
		f := rep.Findings[0]
		out.First = &repo.ScanFinding{Filesystem: f.Filesystem, Path: f.Path, Signature: f.Signature}
	}
	for _, fs := range rep.Skipped {
		res.Warnings = append(res.Warnings, "filesystem "+textsafe.Escape(fs)+" not mounted, so not scanned")
	}
	if rep.Result == repo.ScanFailed {
		return res, nil // not recorded: a later scan may still run
	}
	if err := c.PutScan(ctx, rep.Record(m.ID)); err != nil {
		res.Warnings = append(res.Warnings, "record the scan on the point: "+err.Error())
	} else {
		out.Recorded = true
	}
	p.log.Info("point scanned", "point", m.ID, "engine", rep.Engine, "result", rep.Result, "findings", rep.Count)
	return res, nil
}
