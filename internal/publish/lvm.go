package publish

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/guestdisk"
)

// lvmConfig keeps LVM from waiting for udev (there may be none) and from
// monitoring the volumes Publish activates.
const lvmConfig = "activation { udev_sync = 0 udev_rules = 0 verify_udev_operations = 1 monitoring = 0 }"

// lvmArgs restricts an LVM command to devs (the devices Publish
// attached), so it never sees or touches the host's volumes.
func lvmArgs(devs []string, args ...string) []string {
	return append([]string{"--devices", strings.Join(devs, ","), "--config", lvmConfig}, args...)
}

// activateLVM activates, read-only, the volume groups on the physical
// volumes found, and adds their logical volumes to Filesystems.
func (s *Session) activateLVM(ctx context.Context) error {
	var pvs []string
	pvDisk := map[string]int{}
	for i := range s.Filesystems {
		fs := &s.Filesystems[i]
		if fs.FSType == "LVM2_member" {
			pvs = append(pvs, fs.Device)
			pvDisk[fs.Device] = fs.Disk
		}
	}
	if len(pvs) == 0 {
		return nil
	}
	out, err := s.sys.Run(ctx, "pvs", lvmArgs(pvs, "--noheadings", "-o", "pv_name,vg_name")...)
	if err != nil {
		s.problem("LVM physical volumes %s: %v", strings.Join(pvs, ", "), err)
		return nil
	}
	vgs := parsePVs(out)
	if !s.sys.DeviceMapper() {
		for i := range s.Filesystems {
			if fs := &s.Filesystems[i]; fs.FSType == "LVM2_member" {
				fs.Problem = "volume group not activated: this kernel has no device-mapper"
			}
		}
		for _, vg := range sortedKeys(vgs) {
			s.problem("volume group %s (on %s) not activated: this kernel has no device-mapper", vg, strings.Join(vgs[vg], ", "))
		}
		return nil
	}
	active, err := s.activeDM(ctx)
	if err != nil {
		s.problem("LVM: cannot list the host's device-mapper devices: %v", err)
		return nil
	}
	for _, vg := range sortedKeys(vgs) {
		if clashes(active, vg) {
			s.problem("volume group %s skipped: a volume group of that name is active on this host", vg)
			continue
		}
		if err := s.activateVG(ctx, vg, pvs, pvDisk[vgs[vg][0]]); err != nil {
			return err
		}
	}
	return nil
}

// activateVG activates vg read-only (recorded) and probes its volumes.
func (s *Session) activateVG(ctx context.Context, vg string, pvs []string, disk int) error {
	err := s.do(ctx, Step{Kind: stepVG, VG: vg, Devices: pvs}, func(*Step) error {
		cfg := lvmConfig + fmt.Sprintf(" activation { read_only_volume_list = [ %q ] }", vg)
		args := []string{"--devices", strings.Join(pvs, ","), "--config", cfg, "-ay", vg}
		_, err := s.sys.Run(ctx, "vgchange", args...)
		return err
	})
	if err != nil {
		if isFatal(err) {
			return err
		}
		s.problem("volume group %s: not activated: %v", vg, err)
		return nil
	}
	out, err := s.sys.Run(ctx, "lvs", lvmArgs(pvs, "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size", vg)...)
	if err != nil {
		s.problem("volume group %s: %v", vg, err)
		return nil
	}
	for _, lv := range parseLVs(out) {
		fs := Filesystem{Name: lv.name, Disk: disk, LV: vg + "/" + lv.name, Device: "/dev/mapper/" + guestdisk.DMName(vg, lv.name), Size: lv.size}
		s.addProbed(ctx, fs)
	}
	return nil
}

// activeDM lists the host's device-mapper devices.
func (s *Session) activeDM(ctx context.Context) ([]string, error) {
	out, err := s.sys.Run(ctx, "dmsetup", "info", "-c", "--noheadings", "-o", "name")
	if err != nil {
		return nil, err
	}
	if strings.Contains(string(out), "No devices found") {
		return nil, nil
	}
	return strings.Fields(string(out)), nil
}

// clashes reports whether a device-mapper device of volume group vg is
// active already.
func clashes(active []string, vg string) bool {
	prefix := strings.ReplaceAll(vg, "-", "--") + "-"
	for _, a := range active {
		if strings.HasPrefix(a, prefix) && !strings.HasPrefix(a[len(prefix):], "-") {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parsePVs reads "PV VG" lines: the volume groups and their PVs.
func parsePVs(out []byte) map[string][]string {
	vgs := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			vgs[f[1]] = append(vgs[f[1]], f[0])
		}
	}
	return vgs
}

type lvInfo struct {
	name string
	size int64
}

// parseLVs reads "NAME SIZE" lines.
func parseLVs(out []byte) []lvInfo {
	var lvs []lvInfo
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || strings.ContainsAny(f[0], "/") {
			continue
		}
		lvs = append(lvs, lvInfo{f[0], size})
	}
	return lvs
}
