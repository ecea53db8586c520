package vmx

import (
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// sample is a vSphere VM as a backup records it.
func sample() *repo.VMConfig {
	return &repo.VMConfig{Platform: "vsphere", Name: "web-01", GuestID: "ubuntu64Guest", Version: "vmx-19",
		CPUs: 2, MemoryMiB: 4096, Firmware: "efi",
		Disks: []repo.VMDisk{
			{Index: 0, Controller: "pvscsi 0", Bus: 0, Unit: 0, CapacityBytes: 10 << 30},
			{Index: 1, Controller: "pvscsi 0", Bus: 0, Unit: 1, CapacityBytes: 1 << 30},
		},
		NICs: []repo.VMNIC{{Model: "vmxnet3", Network: "VM Network", MAC: "00:50:56:01:02:03"}, {Model: "e1000e", Network: "DMZ"}}}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	l := New("web-01", sample(), []int64{10 << 30, 1 << 30})
	if l.VMX != "web-01.vmx" || len(l.Disks) != 2 || l.Disks[1].Descriptor != "web-01-disk1.vmdk" ||
		l.Disks[1].Flat != "web-01-disk1-flat.vmdk" {
		t.Fatalf("layout %+v", l)
	}
	golden(t, "web-01.vmx", l.Text)
	golden(t, "web-01-disk0.vmdk", l.Disks[0].Text)
	golden(t, "defaults.vmx", New("plain", nil, []int64{1 << 20}).Text)
}

func TestKeys(t *testing.T) {
	keys, err := Parse(New("web-01", sample(), []int64{10 << 30, 1 << 30}).Text)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"numvcpus": "2", "memsize": "4096", "firmware": "efi", "guestos": "ubuntu-64", "virtualhw.version": "19",
		"scsi0.virtualdev": "pvscsi", "scsi0:0.filename": "web-01-disk0.vmdk", "scsi0:1.filename": "web-01-disk1.vmdk",
		"ethernet0.virtualdev": "vmxnet3", "ethernet0.networkname": "VM Network", "ethernet0.addresstype": "generated",
		"ethernet1.networkname": "DMZ", "uuid.action": "create", "displayname": "web-01",
	} {
		if keys[k] != want {
			t.Errorf("%s = %q, want %q", k, keys[k], want)
		}
	}
	for k := range keys {
		if strings.Contains(k, "address") && k != "ethernet0.addresstype" && k != "ethernet1.addresstype" {
			t.Errorf("the recorded MAC is carried over: %s", k)
		}
	}
}

func TestPlacement(t *testing.T) {
	for _, tc := range []struct {
		name  string
		disks []repo.VMDisk
		n     int
		want  []string // key: fileName of each disk
		dev   map[string]string
	}{
		{"recorded", []repo.VMDisk{{Index: 0, Controller: "lsilogic", Bus: 1, Unit: 3}}, 1,
			[]string{"scsi1:3"}, map[string]string{"scsi1": "lsilogic"}},
		{"unit 7 is the controller's", []repo.VMDisk{{Index: 0, Controller: "pvscsi", Bus: 0, Unit: 7}}, 1,
			[]string{"scsi0:0"}, map[string]string{"scsi0": "pvscsi"}},
		{"same slot twice", []repo.VMDisk{{Index: 0, Controller: "pvscsi", Unit: 0}, {Index: 1, Controller: "pvscsi", Unit: 0}}, 2,
			[]string{"scsi0:0", "scsi0:1"}, nil},
		{"not recorded", nil, 2, []string{"scsi0:0", "scsi0:1"}, map[string]string{"scsi0": "lsilogic"}},
		{"sata and nvme", []repo.VMDisk{{Index: 0, Controller: "sata 0", Unit: 29}, {Index: 1, Controller: "nvme", Bus: 3, Unit: 2}}, 2,
			[]string{"sata0:29", "nvme3:2"}, nil},
		{"ide", []repo.VMDisk{{Index: 0, Controller: "ide", Bus: 1, Unit: 1}, {Index: 1, Controller: "ide", Bus: 5}}, 2,
			[]string{"ide1:1", "ide0:0"}, nil},
		{"bus with another type", []repo.VMDisk{{Index: 0, Controller: "pvscsi", Unit: 0}, {Index: 1, Controller: "lsilogic", Unit: 1}}, 2,
			[]string{"scsi0:0", "scsi1:0"}, map[string]string{"scsi0": "pvscsi", "scsi1": "lsilogic"}},
		{"unknown controller", []repo.VMDisk{{Index: 0, Controller: "floppy!"}}, 1, []string{"scsi0:0"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sizes := make([]int64, tc.n)
			keys, err := Parse(New("x", &repo.VMConfig{Disks: tc.disks}, sizes).Text)
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range tc.want {
				if got := keys[k+".filename"]; got != New("x", nil, sizes).Disks[i].Descriptor {
					t.Errorf("disk %d: %s.fileName = %q", i, k, got)
				}
			}
			for k, v := range tc.dev {
				if keys[k+".virtualdev"] != v {
					t.Errorf("%s.virtualDev = %q, want %s", k, keys[k+".virtualdev"], v)
				}
			}
			if strings.Contains(tc.want[0], "ide") && keys["ide0.present"] != "" {
				t.Error("IDE controllers are not declared")
			}
		})
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"web-01": "web-01", "my vm (copy)": "my_vm__copy_", "../../etc": "_.._etc", "": "vm", "...": "vm",
		"-rf": "rf", "vm\n.vmx": "vm_.vmx", "Ünïcode": "__n__code", strings.Repeat("a", 100): strings.Repeat("a", 64),
	} {
		if got := FileBase(in); got != want {
			t.Errorf("FileBase(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"ubuntu64Guest": "ubuntu-64", "windows2019srv_64Guest": "windows2019srv-64", "otherGuest": "other",
		"otherGuest64": "other-64", "otherLinux64Guest": "otherlinux-64", "rhel8_64Guest": "rhel8-64", "": "other-64",
		`x" evil = "1`: "xevil1",
	} {
		if got := GuestOS(in); got != want {
			t.Errorf("GuestOS(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain": `"plain"`, `a"b`: `"a|22b"`, "a\nb": `"a|0Ab"`, "a|b": `"a|7Cb"`, `a\b`: `"a|5Cb"`,
		"Ünï": `"Ünï"`, "\xff": `"|FF"`, "\x7f": `"|7F"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		`a = b`, `= "x"`, `a b = "x"`, `a = "x" "y"`, `a = "x"` + "\n" + `A = "y"`, `a = "|G0"`, `a = "|4"`, `a = "x`,
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

// FuzzVMXValues: whatever the manifest holds (a VM name, a network, a
// guest id, a controller), the .vmx has exactly the keys of a plain
// configuration of the same shape, and the names read back unchanged.
func FuzzVMXValues(f *testing.F) {
	f.Add("web-01", "VM Network", "ubuntu64Guest", "pvscsi 0", "vmx-19", "efi")
	f.Add("x\"\ndisplayName = \"evil", "net\"\nethernet9.present = \"TRUE", "g\nx=\"1", "ide\n", "vmx-\n", "\"")
	f.Add("|22|0A", "\x00\xff", "", "", "", "")
	f.Fuzz(func(t *testing.T, name, network, guest, controller, version, fw string) {
		cfg := &repo.VMConfig{GuestID: guest, Version: version, Firmware: fw, CPUs: 1,
			Disks: []repo.VMDisk{{Index: 0, Controller: controller}}, NICs: []repo.VMNIC{{Model: name, Network: network}}}
		l := New(name, cfg, []int64{1 << 20})
		keys, err := Parse(l.Text)
		if err != nil {
			t.Fatalf("generated .vmx does not parse: %v\n%s", err, l.Text)
		}
		plain, _ := Parse(New("x", &repo.VMConfig{CPUs: 1, Disks: []repo.VMDisk{{Index: 0, Controller: controllerKind(controller).prefix}},
			NICs: []repo.VMNIC{{Network: "n"}}}, []int64{1 << 20}).Text)
		got, want := slices.Sorted(maps.Keys(keys)), slices.Sorted(maps.Keys(plain))
		if !slices.Equal(got, want) {
			t.Fatalf("keys %q, want %q", got, want)
		}
		wantNet := network
		if wantNet == "" {
			wantNet = DefaultNetwork
		}
		if keys["displayname"] != name || keys["ethernet0.networkname"] != wantNet {
			t.Fatalf("names read back %q %q", keys["displayname"], keys["ethernet0.networkname"])
		}
		if base := FileBase(name); strings.ContainsAny(base, "/\"\n\\|") || base == "" {
			t.Fatalf("file base %q", base)
		}
	})
}

// FuzzParse: any bytes give keys or an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("a = \"b|22\"\n# c\n"))
	f.Add([]byte("a = \"|\""))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse(b)
	})
}
