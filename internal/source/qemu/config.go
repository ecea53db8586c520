package qemu

import (
	"context"
	"regexp"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/qmp"
)

// nicModel finds the NIC models in HMP "info network" output, lines such as
// "net0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:56".
var nicModel = regexp.MustCompile(`type=nic,model=([A-Za-z0-9_.-]+)`)

// vmConfig asks QEMU for what a recovery needs to start the VM again:
// memory, CPU count, NIC models. It is best effort: a question QEMU cannot
// answer leaves its key out.
func vmConfig(ctx context.Context, c *qmp.Client) map[string]string {
	cfg := map[string]string{}
	var mem struct {
		Base int64 `json:"base-memory"`
	}
	if err := c.Execute(ctx, "query-memory-size-summary", nil, &mem); err == nil && mem.Base > 0 {
		cfg["vm_memory_mib"] = strconv.FormatInt(mem.Base>>20, 10)
	}
	var cpus []map[string]any
	if err := c.Execute(ctx, "query-cpus-fast", nil, &cpus); err == nil && len(cpus) > 0 {
		cfg["vm_cpus"] = strconv.Itoa(len(cpus))
	}
	if out, err := c.HumanMonitorCommand(ctx, "info network"); err == nil {
		var models []string
		for _, m := range nicModel.FindAllStringSubmatch(out, -1) {
			models = append(models, m[1])
		}
		if len(models) > 0 {
			cfg["vm_nics"] = strings.Join(models, ",")
		}
	}
	return cfg
}
