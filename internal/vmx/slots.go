package vmx

import (
	"fmt"
	"sort"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// kind is a kind of disk controller as the .vmx spells it.
type kind struct {
	prefix string // scsi, sata, nvme, ide
	dev    string // scsiN.virtualDev (SCSI only)
	buses  int
	units  int
	skip   int // a unit that holds no disk (the SCSI controller's own 7), or -1
}

// scsi is a SCSI controller of type dev: 4 buses of 16 units but the
// controller's own unit 7.
func scsi(dev string) kind { return kind{"scsi", dev, 4, 16, 7} }

// controllerKind maps a recorded controller ("pvscsi 0", "lsilogic",
// "sata 1") to its kind; unknown ones are LSI Logic SCSI.
func controllerKind(c string) kind {
	f := strings.Fields(strings.ToLower(c))
	if len(f) == 0 {
		return scsi("lsilogic")
	}
	switch f[0] {
	case "pvscsi", "paravirtual", "paravirtualscsi":
		return scsi("pvscsi")
	case "lsilogic-sas", "lsilogicsas", "lsisas1068", "lsisas":
		return scsi("lsisas1068")
	case "buslogic":
		return scsi("buslogic")
	case "sata", "ahci":
		return kind{"sata", "", 4, 30, -1}
	case "nvme":
		return kind{"nvme", "", 4, 15, -1}
	case "ide":
		return kind{"ide", "", 2, 2, -1}
	}
	return scsi("lsilogic")
}

func (k kind) adapter() string {
	switch {
	case k.prefix == "ide":
		return "ide"
	case k.dev == "buslogic":
		return "buslogic"
	}
	return "lsilogic"
}

// slot is where one disk sits.
type slot struct {
	kind      kind
	bus, unit int
}

// place puts the point's n disks on controllers: where cfg recorded them
// when that slot is valid and free, else on the next free unit of the
// same kind (LSI Logic SCSI for disks cfg does not describe).
func place(cfg *repo.VMConfig, n int) []slot {
	byIndex := map[int]repo.VMDisk{}
	for _, d := range cfg.Disks {
		if _, dup := byIndex[d.Index]; !dup {
			byIndex[d.Index] = d
		}
	}
	used := map[string]bool{}
	// a bus holds one controller type: the first disk placed there decides
	busDev := map[string]string{}
	key := func(s slot) string { return fmt.Sprintf("%s%d:%d", s.kind.prefix, s.bus, s.unit) }
	fits := func(s slot) bool {
		k := s.kind
		bus := fmt.Sprintf("%s%d", k.prefix, s.bus)
		return s.bus >= 0 && s.bus < k.buses && s.unit >= 0 && s.unit < k.units && s.unit != k.skip &&
			!used[key(s)] && (busDev[bus] == "" || busDev[bus] == k.dev)
	}
	take := func(s slot) slot {
		used[key(s)] = true
		busDev[fmt.Sprintf("%s%d", s.kind.prefix, s.bus)] = s.kind.dev
		return s
	}
	out := make([]slot, n)
	for i := range n {
		k := scsi("lsilogic")
		want := slot{kind: k, bus: -1}
		if d, ok := byIndex[i]; ok {
			k = controllerKind(d.Controller)
			want = slot{kind: k, bus: d.Bus, unit: d.Unit}
		}
		if fits(want) {
			out[i] = take(want)
			continue
		}
		out[i] = take(nextFree(k, fits))
	}
	return out
}

// nextFree is the first slot of kind k that fits, else (all full) a slot
// past the kind's limits that ESXi will refuse with a clear message.
func nextFree(k kind, fits func(slot) bool) slot {
	for bus := range k.buses {
		for unit := range k.units {
			if s := (slot{kind: k, bus: bus, unit: unit}); fits(s) {
				return s
			}
		}
	}
	return slot{kind: k, bus: k.buses, unit: 0}
}

// controller is one controller the .vmx declares.
type controller struct{ key, dev string }

func controllers(slots []slot) []controller {
	seen := map[string]bool{}
	var out []controller
	for _, s := range slots {
		k := fmt.Sprintf("%s%d", s.kind.prefix, s.bus)
		if seen[k] || s.kind.prefix == "ide" {
			continue
		}
		seen[k] = true
		out = append(out, controller{key: k, dev: s.kind.dev})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}
