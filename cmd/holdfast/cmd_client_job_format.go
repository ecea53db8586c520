package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
)

// applyFormats applies --format values to a job definition (see
// internal/jobdef/formats.go for the fields): FORMAT sets the format of
// every file disk, DISK=FORMAT that of one disk; "auto" removes the format
// given and the one the server recorded, so the next backup detects it
// again.
func applyFormats(def *jobdef.Definition, specs []string) error {
	for _, spec := range specs {
		disk, format := "", spec
		if i := strings.LastIndex(spec, "="); i >= 0 {
			disk, format = spec[:i], spec[i+1:]
			if disk == "" {
				return usageError{fmt.Errorf("--format %q: want FORMAT or DISK=FORMAT", spec)}
			}
		}
		switch format {
		case "raw", "qcow2", "vmdk", "auto":
		default:
			return usageError{fmt.Errorf("--format %q: want raw, qcow2, vmdk or auto", spec)}
		}
		switch {
		case disk == "" && format == "auto":
			def.Format, def.RecordedFormats = "", nil
		case disk == "":
			def.Format = format
		case format == "auto":
			delete(def.DiskFormats, disk)
			delete(def.RecordedFormats, disk)
		default:
			if def.DiskFormats == nil {
				def.DiskFormats = map[string]string{}
			}
			def.DiskFormats[disk] = format
		}
	}
	return nil
}

// formatRows are the `job show` lines of a job's image formats.
func formatRows(d jobdef.Definition) [][]string {
	var rows [][]string
	if d.Format != "" {
		rows = append(rows, []string{"Format:", d.Format + " (every file disk)"})
	}
	if len(d.DiskFormats) > 0 {
		rows = append(rows, []string{"Disk formats:", formatList(d.DiskFormats)})
	}
	if len(d.RecordedFormats) > 0 {
		rows = append(rows, []string{"Recorded formats:", formatList(d.RecordedFormats) + " (detected at the first backup)"})
	}
	if d.FollowBacking {
		rows = append(rows, []string{"Backing chains:", "followed for disks given as qcow2"})
	}
	return rows
}

func formatList(m map[string]string) string {
	out := make([]string, 0, len(m))
	for _, disk := range slices.Sorted(maps.Keys(m)) {
		out = append(out, disk+"="+m[disk])
	}
	return strings.Join(out, " ")
}

// forgetDroppedFormats removes the recorded formats of the disks the job's
// listed VMs had and vms no longer have: a file added again later under the
// same name is detected again (disks of VMs selected from sources keep
// theirs).
func forgetDroppedFormats(def *jobdef.Definition, vms []jobdef.VM) {
	kept := map[string]bool{}
	for _, vm := range vms {
		for _, d := range vm.Disks {
			kept[d] = true
		}
	}
	for _, vm := range def.VMs {
		for _, d := range vm.Disks {
			if !kept[d] {
				delete(def.RecordedFormats, d)
			}
		}
	}
}
