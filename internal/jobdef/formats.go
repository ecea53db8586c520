package jobdef

import (
	"fmt"
	"sort"

	"github.com/holdfast-backup/holdfast/internal/source/file"
)

// Image formats of a job's file disks (image paths and file:// URLs). The
// bytes of a raw disk belong to its guest, which can write a qcow2 or VMDK
// header into it; so a job reads each file disk with a format known before
// its bytes are read:
//
//	"format": "raw"                           every file disk (--format FORMAT)
//	"disk_formats": {"/vm/a.vmdk": "vmdk"}    one disk (--format DISK=FORMAT)
//	"recorded_formats": {"/vm/b.img": "raw"}  written by the server
//	"follow_backing": true                    qcow2 backing chains (--follow-backing)
//
// The orchestrator applies them (internal/server/orchestrator/formats.go).

// checkFormats validates the format keys.
func (d Definition) checkFormats() error {
	check := func(field, f string) error {
		switch f {
		case file.FormatRaw, file.FormatQcow2, file.FormatVMDK:
			return nil
		}
		return fieldErr(field, "format %q (want raw, qcow2 or vmdk)", f)
	}
	if d.Format != "" {
		if err := check("definition.format", d.Format); err != nil {
			return err
		}
	}
	for _, m := range []struct {
		key     string
		formats map[string]string
	}{{"disk_formats", d.DiskFormats}, {"recorded_formats", d.RecordedFormats}} {
		for _, disk := range sortedKeys(m.formats) {
			if err := check(fmt.Sprintf("definition.%s[%q]", m.key, disk), m.formats[disk]); err != nil {
				return err
			}
		}
	}
	if d.FollowBacking && d.Format != file.FormatQcow2 && !hasFormat(d.DiskFormats, file.FormatQcow2) {
		return fieldErr("definition.follow_backing", "follow_backing needs disks given as qcow2 (format or disk_formats)")
	}
	return nil
}

func hasFormat(m map[string]string, f string) bool {
	for _, v := range m {
		if v == f {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
