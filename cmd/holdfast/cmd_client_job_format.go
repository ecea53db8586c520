package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// applyFormats applies --format values to a job definition (see
// internal/server/orchestrator/formats.go for the keys): FORMAT sets the
// format of every file disk, DISK=FORMAT that of one disk; "auto" removes
// the format given and the one the server recorded, so the next backup
// detects it again.
func applyFormats(def map[string]any, specs []string) error {
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
			delete(def, "format")
			delete(def, "recorded_formats")
		case disk == "":
			def["format"] = format
		case format == "auto":
			delete(defMap(def, "disk_formats"), disk)
			delete(defMap(def, "recorded_formats"), disk)
		default:
			defMap(def, "disk_formats")[disk] = format
		}
	}
	return nil
}

// defMap returns the JSON object under key in def, creating it if needed.
func defMap(def map[string]any, key string) map[string]any {
	m, ok := def[key].(map[string]any)
	if !ok {
		m = map[string]any{}
		def[key] = m
	}
	return m
}

// formatRows are the `job show` lines of a job's image formats.
func (d jobDef) formatRows() [][]string {
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
	var out []string
	for disk, f := range m {
		out = append(out, disk+"="+f)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// forgetDroppedFormats removes the recorded formats of the disks the job's
// listed VMs had and vms no longer have: a file added again later under the
// same name is detected again (disks of VMs selected from sources keep
// theirs).
func forgetDroppedFormats(def map[string]any, vms []jobVM) {
	recorded, ok := def["recorded_formats"].(map[string]any)
	if !ok {
		return
	}
	raw, _ := json.Marshal(def["vms"])
	var old []json.RawMessage
	_ = json.Unmarshal(raw, &old)
	kept := map[string]bool{}
	for _, vm := range vms {
		for _, d := range vm.Disks {
			kept[d] = true
		}
	}
	for _, o := range old {
		var vm jobVM
		if json.Unmarshal(o, &vm) != nil {
			continue // a bare VM name lists no disks
		}
		for _, d := range vm.Disks {
			if !kept[d] {
				delete(recorded, d)
			}
		}
	}
}
