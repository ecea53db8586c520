package vsphere

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/vmware/govmomi/vim25/types"
)

// errNoDevice says the attached disk has no block device (yet).
var errNoDevice = errors.New("no block device for the attached disk")

// SysfsFinder finds the block device of a disk hot-added to a Linux proxy
// VM, in this order:
//
//  1. /dev/disk/by-id/wwn-0x<UUID>: the disk's backing UUID (6000C29…)
//     without dashes, which the guest sees as the SCSI device's WWN when
//     the proxy VM has disk.EnableUUID = TRUE (recommended);
//  2. the SCSI address: the one /sys/block/sd* whose device is at target
//     UNIT, LUN 0 (…/H:C:UNIT:0) with the disk's size and vendor VMware.
//
// Until one is found it asks every SCSI host to rescan
// (/sys/class/scsi_host/host*/scan) and polls, for at most Wait.
type SysfsFinder struct {
	// Root is prepended to /dev and /sys ("" or "/" on a real proxy).
	Root string
	// Wait bounds the wait for the device to appear; Poll is the interval.
	Wait, Poll time.Duration
	Clock      clock.Clock
}

// NewSysfsFinder returns the finder of a real proxy: 60 s of waiting.
func NewSysfsFinder() *SysfsFinder {
	return &SysfsFinder{Root: "/", Wait: time.Minute, Poll: time.Second}
}

// Find returns the device path of disk.
func (f *SysfsFinder) Find(ctx context.Context, disk *types.VirtualDisk) (string, error) {
	clk := clock.Or(f.Clock)
	start := clk.Now()
	for {
		dev, err := f.findOnce(disk)
		if !errors.Is(err, errNoDevice) || clk.Since(start) >= f.Wait {
			return dev, err
		}
		f.rescan()
		if err := clk.Sleep(ctx, max(f.Poll, time.Millisecond)); err != nil {
			return "", err
		}
	}
}

func (f *SysfsFinder) path(p string) string { return filepath.Join(f.Root, p) }

// findOnce looks for the device by WWN, then by SCSI address.
func (f *SysfsFinder) findOnce(disk *types.VirtualDisk) (string, error) {
	if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok && b.Uuid != "" {
		wwn := "wwn-0x" + strings.ToLower(strings.ReplaceAll(b.Uuid, "-", ""))
		dev, err := filepath.EvalSymlinks(f.path("/dev/disk/by-id/" + wwn))
		if err == nil {
			return dev, nil
		}
	}
	if disk.UnitNumber == nil {
		return "", fmt.Errorf("%w: the disk has no unit number", errNoDevice)
	}
	unit := int(*disk.UnitNumber)
	entries, err := os.ReadDir(f.path("/sys/block"))
	if err != nil {
		return "", fmt.Errorf("list block devices: %w", err)
	}
	var found []string
	for _, e := range entries {
		if f.matches(e.Name(), unit, disk.CapacityInBytes) {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: no /dev/disk/by-id/wwn-0x… for its UUID and no VMware SCSI disk of %d bytes at target %d (rescanned)", errNoDevice, disk.CapacityInBytes, unit)
	case 1:
		return f.path("/dev/" + found[0]), nil
	default:
		return "", fmt.Errorf("several SCSI disks of %d bytes at target %d (%s): set disk.EnableUUID = TRUE on the proxy VM so the disk is found by its UUID",
			disk.CapacityInBytes, unit, strings.Join(found, ", "))
	}
}

// matches says whether block device name is a VMware SCSI disk of size
// bytes at target unit, LUN 0.
func (f *SysfsFinder) matches(name string, unit int, size int64) bool {
	dir := f.path("/sys/block/" + name)
	link, err := os.Readlink(filepath.Join(dir, "device"))
	if err != nil {
		return false
	}
	addr := strings.Split(filepath.Base(link), ":") // H:C:T:L
	if len(addr) != 4 || addr[2] != strconv.Itoa(unit) || addr[3] != "0" {
		return false
	}
	vendor, err := os.ReadFile(filepath.Join(dir, "device", "vendor"))
	if err != nil || strings.TrimSpace(string(vendor)) != "VMware" {
		return false
	}
	sectors, err := os.ReadFile(filepath.Join(dir, "size"))
	if err != nil {
		return false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(sectors)), 10, 64)
	return err == nil && n*512 == size
}

// rescan asks every SCSI host to look for new devices; failures (no
// permission, no SCSI) leave the device missing, which Find reports.
func (f *SysfsFinder) rescan() {
	hosts, _ := filepath.Glob(f.path("/sys/class/scsi_host/host*/scan"))
	for _, h := range hosts {
		_ = os.WriteFile(h, []byte("- - -"), 0o200)
	}
}
