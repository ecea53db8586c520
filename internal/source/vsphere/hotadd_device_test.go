package vsphere

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/vmware/govmomi/vim25/types"
)

// fakeSys builds /sys/block/NAME (device link to H:C:T:L, vendor, size)
// and /dev/NAME under root.
func fakeSys(t *testing.T, root, name, addr, vendor string, sectors int) {
	t.Helper()
	dev := filepath.Join(root, "sys/devices/pci0000:00/host2", addr)
	blk := filepath.Join(root, "sys/block", name)
	for _, dir := range []string{dev, blk, filepath.Join(root, "dev")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dev, "vendor"), []byte(vendor+"  \n"), 0o644))
	must(os.Symlink(dev, filepath.Join(blk, "device")))
	must(os.WriteFile(filepath.Join(blk, "size"), []byte(strconv.Itoa(sectors)+"\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "dev", name), nil, 0o644))
}

func testDisk(uuid string, unit int32, size int64) *types.VirtualDisk {
	return &types.VirtualDisk{
		VirtualDevice: types.VirtualDevice{UnitNumber: types.NewInt32(unit),
			Backing: &types.VirtualDiskFlatVer2BackingInfo{Uuid: uuid}},
		CapacityInBytes: size,
	}
}

func TestSysfsFinder(t *testing.T) {
	const uuid = "6000C29d-5c8b-6ebc-4f28-2c52f1bd05c7"
	tests := []struct {
		name      string
		setup     func(t *testing.T, root string)
		disk      *types.VirtualDisk
		want      string // device under root
		wantInErr string
	}{
		{name: "by WWN", disk: testDisk(uuid, 3, 1<<20), want: "/dev/sdc", setup: func(t *testing.T, root string) {
			fakeSys(t, root, "sdc", "2:0:5:0", "VMware", 1<<11) // wrong address: the WWN wins
			byID := filepath.Join(root, "dev/disk/by-id")
			if err := os.MkdirAll(byID, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../../sdc", filepath.Join(byID, "wwn-0x6000c29d5c8b6ebc4f282c52f1bd05c7")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "by SCSI address", disk: testDisk(uuid, 3, 1<<20), want: "/dev/sdb", setup: func(t *testing.T, root string) {
			fakeSys(t, root, "sda", "2:0:0:0", "VMware", 1<<11) // the proxy's own disk
			fakeSys(t, root, "sdb", "2:0:3:0", "VMware", 1<<11) // the attached one
			fakeSys(t, root, "sdd", "3:0:3:0", "VMware", 1<<12) // another size
			fakeSys(t, root, "sde", "4:0:3:0", "NVMeCo", 1<<11) // another vendor
			fakeSys(t, root, "sdf", "2:0:3:1", "VMware", 1<<11) // another LUN
		}},
		{name: "ambiguous", disk: testDisk("", 3, 1<<20), wantInErr: "disk.EnableUUID", setup: func(t *testing.T, root string) {
			fakeSys(t, root, "sdb", "2:0:3:0", "VMware", 1<<11)
			fakeSys(t, root, "sdc", "3:0:3:0", "VMware", 1<<11)
		}},
		{name: "none", disk: testDisk(uuid, 3, 1<<20), wantInErr: "no VMware SCSI disk of 1048576 bytes at target 3", setup: func(t *testing.T, root string) {
			fakeSys(t, root, "sda", "2:0:0:0", "VMware", 1<<11)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tt.setup(t, root)
			clk := clock.NewFake(time.Unix(0, 0))
			f := &SysfsFinder{Root: root, Wait: 10 * time.Second, Poll: time.Second, Clock: clk}
			dev, err := f.Find(context.Background(), tt.disk)
			if tt.wantInErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantInErr) {
					t.Fatalf("Find = %q, %v; want an error containing %q", dev, err, tt.wantInErr)
				}
				return
			}
			if err != nil || dev != filepath.Join(root, tt.want) {
				t.Fatalf("Find = %q, %v; want %s", dev, err, tt.want)
			}
		})
	}
}

// Find rescans the SCSI hosts and waits for the device to appear.
func TestSysfsFinderWaits(t *testing.T) {
	root := t.TempDir()
	scan := filepath.Join(root, "sys/class/scsi_host/host2/scan")
	if err := os.MkdirAll(filepath.Dir(scan), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(scan, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "sys/block"), 0o755); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Unix(0, 0))
	f := &SysfsFinder{Root: root, Wait: time.Minute, Poll: time.Second, Clock: clk}
	rescans := 0
	// The device appears after the third rescan: simulate the kernel by
	// watching the scan file from the test's fake sleep.
	slept := &sleepHook{Fake: clk, each: func() {
		if b, _ := os.ReadFile(scan); string(b) == "- - -" {
			rescans++
			_ = os.WriteFile(scan, nil, 0o600)
			if rescans == 3 {
				fakeSys(t, root, "sdb", "2:0:1:0", "VMware", 8)
			}
		}
	}}
	f.Clock = slept
	dev, err := f.Find(context.Background(), testDisk("", 1, 4096))
	if err != nil || dev != filepath.Join(root, "dev/sdb") || rescans != 3 {
		t.Fatalf("Find = %q, %v after %d rescans", dev, err, rescans)
	}
	// Never appearing: an error after Wait.
	f.Clock = clock.NewFake(time.Unix(0, 0))
	if _, err := f.Find(context.Background(), testDisk("", 2, 4096)); err == nil || !strings.Contains(err.Error(), "rescanned") {
		t.Fatalf("Find = %v, want a not-found error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Find(ctx, testDisk("", 2, 4096)); err != context.Canceled {
		t.Fatalf("Find with a cancelled context = %v", err)
	}
}

// sleepHook runs each before every Sleep of the fake clock.
type sleepHook struct {
	*clock.Fake
	each func()
}

func (s *sleepHook) Sleep(ctx context.Context, d time.Duration) error {
	s.each()
	return s.Fake.Sleep(ctx, d)
}

func TestFreeUnit(t *testing.T) {
	ctrl := func(key int32) types.BaseVirtualDevice {
		return &types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{
			VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: key}}, ScsiCtlrUnitNumber: 7}}
	}
	disk := func(ctrl, unit int32) types.BaseVirtualDevice {
		return &types.VirtualDisk{VirtualDevice: types.VirtualDevice{ControllerKey: ctrl, UnitNumber: types.NewInt32(unit)}}
	}
	full := func(key int32) []types.BaseVirtualDevice {
		devs := []types.BaseVirtualDevice{ctrl(key)}
		for u := int32(0); u < 16; u++ {
			if u != 7 {
				devs = append(devs, disk(key, u))
			}
		}
		return devs
	}
	tests := []struct {
		name       string
		devices    []types.BaseVirtualDevice
		ctrl, unit int32
		wantInErr  string
	}{
		{"first free", []types.BaseVirtualDevice{ctrl(1000), disk(1000, 0), disk(1000, 1)}, 1000, 2, ""},
		{"skips the controller's unit", append(full(1000)[:8:8], ctrl(1001)), 1000, 8, ""},
		{"second controller", append(full(1000), ctrl(1001)), 1001, 0, ""},
		{"no free unit", full(1000), 0, 0, "no free unit on the 1 SCSI controller(s)"},
		{"no controller", []types.BaseVirtualDevice{&types.VirtualIDEController{}}, 0, 0, "no SCSI controller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &proxyVM{name: "proxy", devices: tt.devices}
			c, u, err := p.freeUnit()
			if tt.wantInErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantInErr) {
					t.Fatalf("freeUnit = %d, %d, %v; want an error containing %q", c, u, err, tt.wantInErr)
				}
				return
			}
			if err != nil || c != tt.ctrl || u != tt.unit {
				t.Fatalf("freeUnit = %d, %d, %v; want %d, %d", c, u, err, tt.ctrl, tt.unit)
			}
		})
	}
}
