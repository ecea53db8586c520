package orchestrator

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
)

// Image formats of a job's file disks (image paths and file:// URLs). The
// bytes of a raw disk belong to its guest, which can write a qcow2 or VMDK
// header into it; so a job reads each file disk with a format known before
// its bytes are read, and never lets a detected format follow references
// to other files (see internal/source/file):
//
//	"format": "raw"                           every file disk (--format FORMAT)
//	"disk_formats": {"/vm/a.vmdk": "vmdk"}    one disk (--format DISK=FORMAT)
//	"recorded_formats": {"/vm/b.img": "raw"}  written by the server
//	"follow_backing": true                    qcow2 backing chains (--follow-backing)
//
// The first of format, disk_formats and recorded_formats that names a disk
// wins. A disk none names is detected in its first successful backup, and
// the server records what it was detected as in recorded_formats, so later
// runs read it the same way: a disk recorded as raw whose guest then writes
// a qcow2 header is still read as raw. follow_backing applies only to disks
// the administrator gave as qcow2 (format or disk_formats), never to a
// recorded or detected format. NBD and qemu:// disks take their format from
// the server that exports them.

// diskFormat returns the format a file disk is read with ("": detect) and
// whether its backing chain may be followed.
func diskFormat(d *jobdef.Definition, disk string) (format string, followBacking bool) {
	if !isFileDisk(disk) {
		return "", false
	}
	format = d.Format
	if format == "" {
		format = d.DiskFormats[disk]
	}
	if format != "" {
		return format, d.FollowBacking && format == file.FormatQcow2
	}
	return d.RecordedFormats[disk], false
}

// isFileDisk reports whether a disk entry names a local image.
func isFileDisk(disk string) bool {
	s, err := source.Parse(disk)
	return err == nil && s.IsFile()
}

// recordFormats writes into the job's stored definition the formats the
// VM's file disks that no format named were detected as in this backup
// (point m), so later runs read them the same way.
func (or *Orchestrator) recordFormats(ctx context.Context, vm *vmRun, m *repo.Manifest) {
	rs := vm.sess
	if rs.job == "" {
		return
	}
	found := map[string]string{}
	for i, disk := range vm.def.Disks {
		if i >= len(m.Disks) || !isFileDisk(disk) {
			continue
		}
		if f, _ := diskFormat(&rs.def, disk); f != "" {
			continue
		}
		if f := file.RecordedFormat(m.Disks[i].Format); f != "" {
			found[disk] = f
		}
	}
	if len(found) == 0 {
		return
	}
	if err := or.addRecordedFormats(ctx, rs.job, found); err != nil {
		or.warnVM(vm, "record the disks' formats in job "+rs.job+": "+err.Error())
		return
	}
	disks := make([]string, 0, len(found))
	for d := range found {
		disks = append(disks, d+"="+found[d])
	}
	sort.Strings(disks)
	or.log.Info("disk formats recorded in the job", "job", rs.job, "vm", vm.name, "formats", strings.Join(disks, " "))
}

// addRecordedFormats adds formats to the job's recorded_formats, keeping
// the rest of its definition and any format already recorded.
func (or *Orchestrator) addRecordedFormats(ctx context.Context, job string, formats map[string]string) error {
	or.jobWrite.Lock() // VMs of one session end concurrently
	defer or.jobWrite.Unlock()
	j, err := or.store.GetJob(ctx, job)
	if err != nil {
		return err
	}
	def, err := jobdef.Parse(j.Definition)
	if err != nil {
		return err
	}
	if def.RecordedFormats == nil {
		def.RecordedFormats = map[string]string{}
	}
	changed := false
	for disk, f := range formats {
		if def.RecordedFormats[disk] == "" {
			def.RecordedFormats[disk], changed = f, true
		}
	}
	if !changed {
		return nil
	}
	if j.Definition, err = json.Marshal(def); err != nil {
		return err
	}
	_, err = or.store.UpdateJob(ctx, j)
	return err
}
