package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/spf13/cobra"
)

func newPointsCommand(a *app) *cobra.Command {
	var asJSON bool
	var vm string
	c := &cobra.Command{
		Use:   "points",
		Short: "List restore points",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := a.openRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			ms, damaged, err := r.ScanPoints(cmd.Context())
			if err != nil {
				return err
			}
			warnDamagedPoints(a, damaged)
			scans, bad, err := r.Scans(cmd.Context(), "")
			if err != nil {
				return err
			}
			for _, err := range bad {
				fmt.Fprintf(a.stderr, "warning: damaged scan record left out: %v\n", err)
			}
			location, err := filepath.Abs(r.Backend().Location())
			if err != nil {
				return err
			}
			return printPoints(a, location, ms, scans, vm, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	c.Flags().StringVar(&vm, "vm", "", "only points of this VM")
	return c
}

// printPoints prints the repository's points (of vm, if given) as the
// server's `point list` prints its points: one apitypes.Point per point,
// with its newest scan record (scans: by point, newest first).
func printPoints(a *app, location string, ms []*repo.Manifest, scans map[string][]repo.ScanRecord, vm string, asJSON bool) error {
	list := []apitypes.Point{}
	for _, m := range ms {
		if vm == "" || m.VM == vm {
			p := pointView(location, m)
			if ss := scans[m.ID]; len(ss) > 0 {
				p.Scan = &apitypes.PointScan{Engine: ss[0].Engine, Result: ss[0].Result, Findings: ss[0].FindingsCount, Time: ss[0].Time}
			}
			list = append(list, p)
		}
	}
	return writePoints(a, list, asJSON)
}

// pointView is a manifest as the API shows a point.
func pointView(location string, m *repo.Manifest) apitypes.Point {
	p := apitypes.Point{ID: m.ID, Repository: location, VM: m.VM, Time: m.Time}
	for _, d := range m.Disks {
		p.BytesTotal += d.Size
		p.BytesStored += d.Stats.BytesStored
	}
	disks := m.Disks
	if disks == nil {
		disks = []repo.DiskManifest{}
	}
	p.Disks, _ = json.Marshal(disks)
	return p
}

// writePoints prints restore points, for `points` and `point list` alike:
// a JSON array of apitypes.Point, or a table of the same fields.
func writePoints(a *app, ps []apitypes.Point, asJSON bool) error {
	if asJSON {
		return printJSON(a.stdout, mustJSON(ps))
	}
	rows := make([][]string, 0, len(ps))
	for _, p := range ps {
		rows = append(rows, []string{p.ID, p.VM, fmtTime(&p.Time), strconv.Itoa(diskCount(p)),
			formatBytes(p.BytesTotal), formatBytes(p.BytesStored), scanColumn(p.Scan), p.Repository, orDash(p.Job)})
	}
	return table(a.stdout, []string{"ID", "VM", "TIME", "DISKS", "SIZE", "STORED", "SCAN", "REPOSITORY", "JOB"}, rows)
}

// scanColumn is the SCAN column: clean, infected N, failed, or - when
// the point was never scanned.
func scanColumn(s *apitypes.PointScan) string {
	switch {
	case s == nil:
		return "-"
	case s.Result == repo.ScanInfected:
		return fmt.Sprintf("infected %d", s.Findings)
	}
	return s.Result
}

// warnDamagedPoints names, on stderr, the files under points/ that are not
// loadable restore points; the commands carry on with the others.
func warnDamagedPoints(a *app, damaged []repo.DamagedPoint) {
	for _, d := range damaged {
		if d.Stray {
			fmt.Fprintf(a.stderr, "warning: %s\n", d)
			continue
		}
		fmt.Fprintf(a.stderr, "warning: damaged restore point %s left out (run holdfast verify): %v\n", d.ID, d.Err)
	}
}
