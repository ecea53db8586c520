package vmx

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Defaults for what a point does not record.
const (
	DefaultHWVersion = 14
	DefaultMemoryMiB = 1024
	DefaultNetwork   = "VM Network"
	maxBaseLen       = 64
)

// Layout is one VM's files on a datastore.
type Layout struct {
	Base string // file name base: Base.vmx, Base-diskN.vmdk, Base-diskN-flat.vmdk
	VMX  string // Base.vmx
	// Text is the .vmx content.
	Text  []byte
	Disks []Disk
}

// Disk is one disk's files: the descriptor (with its text) and the flat
// extent it names.
type Disk struct {
	Descriptor, Flat string
	Text             []byte
	Size             int64
}

// New lays out VM name (its display name) with configuration cfg (nil:
// defaults) and the point's disk sizes, in disk order.
func New(name string, cfg *repo.VMConfig, sizes []int64) Layout {
	if cfg == nil {
		cfg = &repo.VMConfig{}
	}
	base := FileBase(name)
	l := Layout{Base: base, VMX: base + ".vmx"}
	hw := hwVersion(cfg.Version)
	w := &writer{}
	w.kv(".encoding", "UTF-8")
	w.kv("config.version", "8")
	w.kv("virtualHW.version", strconv.Itoa(hw))
	w.kv("displayName", name)
	w.kv("guestOS", GuestOS(cfg.GuestID))
	w.kv("numvcpus", strconv.Itoa(max(cfg.CPUs, 1)))
	w.kv("memsize", strconv.FormatInt(memory(cfg.MemoryMiB), 10))
	w.kv("firmware", firmware(cfg.Firmware))
	w.kv("uuid.action", "create")
	w.kv("nvram", base+".nvram")
	w.kv("pciBridge0.present", "TRUE")
	for _, n := range []int{4, 5, 6, 7} {
		p := fmt.Sprintf("pciBridge%d.", n)
		w.kv(p+"present", "TRUE")
		w.kv(p+"virtualDev", "pcieRootPort")
		w.kv(p+"functions", "8")
	}
	slots := place(cfg, len(sizes))
	for _, c := range controllers(slots) {
		w.kv(c.key+".present", "TRUE")
		if c.dev != "" {
			w.kv(c.key+".virtualDev", c.dev)
		}
	}
	for i, size := range sizes {
		s := slots[i]
		d := Disk{Descriptor: fmt.Sprintf("%s-disk%d.vmdk", base, i), Flat: fmt.Sprintf("%s-disk%d-flat.vmdk", base, i), Size: size}
		d.Text = []byte(Descriptor(d.Flat, size, "vmfs", s.kind.adapter(), hw))
		l.Disks = append(l.Disks, d)
		key := fmt.Sprintf("%s%d:%d", s.kind.prefix, s.bus, s.unit)
		w.kv(key+".present", "TRUE")
		w.kv(key+".fileName", d.Descriptor)
		if s.kind.prefix == "scsi" {
			w.kv(key+".deviceType", "scsi-hardDisk")
		}
	}
	for i, n := range cfg.NICs {
		p := fmt.Sprintf("ethernet%d.", i)
		w.kv(p+"present", "TRUE")
		w.kv(p+"virtualDev", nicModel(n.Model))
		network := n.Network
		if network == "" {
			network = DefaultNetwork
		}
		w.kv(p+"networkName", network)
		w.kv(p+"addressType", "generated")
	}
	l.Text = []byte(w.b.String())
	return l
}

type writer struct{ b strings.Builder }

func (w *writer) kv(k, v string) { w.b.WriteString(k + " = " + Quote(v) + "\n") }

// Quote encodes v as a quoted .vmx value (see the package doc).
func Quote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); {
		r, n := utf8.DecodeRuneInString(v[i:])
		c := v[i]
		switch {
		case r == utf8.RuneError && n <= 1, c < 0x20, c == 0x7f, c == '"', c == '|', c == '\\':
			fmt.Fprintf(&b, "|%02X", c)
			i++
			continue
		}
		b.WriteString(v[i : i+n])
		i += n
	}
	b.WriteByte('"')
	return b.String()
}

// FileBase makes a file name base of a VM name: only [A-Za-z0-9._-]
// (others become _), no leading dot or dash, at most 64 bytes; "vm" when
// nothing is left.
func FileBase(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	s := strings.TrimLeft(string(b), ".-")
	if len(s) > maxBaseLen {
		s = s[:maxBaseLen]
	}
	if s == "" {
		return "vm"
	}
	return s
}

// GuestOS maps a vSphere guestId ("ubuntu64Guest", "windows2019srv_64Guest")
// to the .vmx guestOS spelling ("ubuntu-64", "windows2019srv-64");
// "otherGuest64" without one. Only [a-z0-9_-] is kept.
func GuestOS(id string) string {
	s := strings.ToLower(id)
	s = strings.Replace(s, "guest", "", 1)
	s = strings.ReplaceAll(s, "_64", "64")
	if strings.HasSuffix(s, "64") {
		s = strings.TrimSuffix(s, "64") + "-64"
	}
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, s)
	if strings.Trim(s, "-_") == "" {
		return "other-64"
	}
	return s
}

func hwVersion(v string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.ToLower(v), "vmx-"))
	if err != nil || n < 4 || n > 99 {
		return DefaultHWVersion
	}
	return n
}

func memory(mib int64) int64 {
	if mib <= 0 {
		return DefaultMemoryMiB
	}
	return mib
}

func firmware(f string) string {
	if strings.EqualFold(f, "efi") {
		return "efi"
	}
	return "bios"
}

func nicModel(m string) string {
	switch m = strings.ToLower(m); m {
	case "vmxnet3", "vmxnet2", "vmxnet", "e1000", "e1000e":
		return m
	case "pcnet32", "vlance":
		return "vlance"
	}
	return "e1000e"
}

// Descriptor is a VMDK text descriptor of one flat extent: createType
// "vmfs" (extent type VMFS, as on ESXi datastores) or "monolithicFlat"
// (FLAT). extent must be a plain file name (FileBase).
func Descriptor(extent string, size int64, createType, adapter string, hw int) string {
	sectors := size / 512
	cyl := sectors / (255 * 63)
	kind := "FLAT"
	offset := " 0"
	if createType == "vmfs" {
		kind, offset = "VMFS", "" // as ESXi writes it
	}
	return fmt.Sprintf(`# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="%s"

# Extent description
RW %d %s "%s"%s

# The Disk Data Base
#DDB

ddb.adapterType = "%s"
ddb.geometry.cylinders = "%d"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.virtualHWVersion = "%d"
`, createType, sectors, kind, extent, offset, adapter, cyl, hw)
}
