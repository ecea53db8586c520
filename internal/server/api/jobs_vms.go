package api

import (
	"bytes"
	"encoding/json"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// checkJobVMs refuses a job definition that lists a VM whose name no restore
// point could carry: the same rule (repo.ValidateVMName) as `backup --name`,
// the orchestrator and the repository's commit, checked when the job is
// stored rather than when its first point is committed. The message names
// the field, e.g. definition.vms[1].name.
func checkJobVMs(def json.RawMessage) error {
	if !bytes.HasPrefix(bytes.TrimSpace(def), []byte("{")) {
		return badRequest("definition: want a JSON object")
	}
	var d struct {
		VMs []json.RawMessage `json:"vms"`
	}
	if err := json.Unmarshal(def, &d); err != nil {
		return badRequest("definition.vms: want a list of VM names or {\"name\", \"disks\"} objects: %v", err)
	}
	for i, raw := range d.VMs {
		var name string
		if json.Unmarshal(raw, &name) != nil {
			var vm struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(raw, &vm); err != nil {
				return badRequest("definition.vms[%d]: want a VM name or a {\"name\", \"disks\"} object", i)
			}
			name = vm.Name
		}
		if err := repo.ValidateVMName(name); err != nil {
			return badRequest("definition.vms[%d].name: %v", i, err)
		}
	}
	return nil
}
