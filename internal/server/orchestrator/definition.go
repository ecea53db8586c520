package orchestrator

import (
	"encoding/json"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// definition is a backup job's definition as the server reads it (the CLI's
// `job create` writes it; see cmd/holdfast/cmd_client_job_def.go).
type definition struct {
	VMs        []vmDef     `json:"vms"`
	Select     []selectDef `json:"select"`
	Repository string      `json:"repository"`
	Retention  struct {
		KeepLast int `json:"keep_last"`
	} `json:"retention"`
	ChunkSize      int    `json:"chunk_size"`
	Transport      string `json:"transport"`
	PasswordSecret string `json:"password_secret"`
	// Guest processing: scripts run in each VM's guest around its
	// snapshot (internal/guest).
	Guest          guestDef `json:"guest"`
	GuestKeySecret string   `json:"guest_ssh_key_secret"`
	ReadLimit      int64    `json:"read_limit"`
	Retries        struct {
		Count       int `json:"count"`        // re-runs of a failed VM
		WaitSeconds int `json:"wait_seconds"` // before each re-run
	} `json:"retries"`
	Throttle []string `json:"throttle"`
	// Image formats of the file disks (formats.go).
	Format          string            `json:"format"`
	DiskFormats     map[string]string `json:"disk_formats"`
	RecordedFormats map[string]string `json:"recorded_formats"`
	FollowBacking   bool              `json:"follow_backing"`
}

type vmDef struct {
	Name  string   `json:"name"`
	Disks []string `json:"disks"`
	// Guest processing paths: the guest's sshd (host:port), the pinned
	// host key fingerprint, the QEMU guest agent socket (fallback).
	GuestSSH     string `json:"guest_ssh,omitempty"`
	GuestHostKey string `json:"guest_host_key,omitempty"`
	GuestAgent   string `json:"guest_agent,omitempty"`
}

// guestDef is a job's guest processing.
type guestDef struct {
	PreFreeze      string `json:"pre_freeze"` // script text
	PostThaw       string `json:"post_thaw"`
	TimeoutSeconds int    `json:"timeout_seconds"` // per script; 0: 10 minutes
	Policy         string `json:"policy"`          // fail (default) or warn
	User           string `json:"user"`            // SSH user; "": root
}

// enabled reports whether the job runs guest scripts.
func (g guestDef) enabled() bool { return g.PreFreeze != "" || g.PostThaw != "" }

func (v *vmDef) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		v.Name = name
		return nil
	}
	type plain vmDef
	return json.Unmarshal(b, (*plain)(v))
}

func parseDefinition(raw json.RawMessage) (definition, error) {
	var d definition
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("job definition: %w", err)
	}
	if d.Repository == "" {
		return d, fmt.Errorf("job definition names no repository")
	}
	if len(d.VMs) == 0 && len(d.Select) == 0 {
		return d, fmt.Errorf("job definition lists no VMs")
	}
	for _, sel := range d.Select {
		if sel.Source == "" {
			return d, fmt.Errorf("job definition: a VM selection without a source")
		}
	}
	// Listed VMs must have valid names (the API checks them too); a VM
	// selected from a source with an invalid name fails alone (prepareVM).
	for i, vm := range d.VMs {
		if err := repo.ValidateVMName(vm.Name); err != nil {
			return d, fmt.Errorf("job definition: vms[%d].name: %w", i, err)
		}
	}
	return d, checkVMs(d)
}

// checkVMs validates the VMs (listed, and selected once resolved).
func checkVMs(d definition) error {
	seen := map[string]bool{}
	for _, vm := range d.VMs {
		if vm.Name == "" {
			return fmt.Errorf("job definition: a VM without a name")
		}
		if seen[vm.Name] {
			return fmt.Errorf("job definition: VM %q listed twice", vm.Name)
		}
		seen[vm.Name] = true
		if len(vm.Disks) == 0 {
			return fmt.Errorf("VM %q lists no disks: give NAME=DISK, or select VMs from a source", vm.Name)
		}
		for i, disk := range vm.Disks {
			s, err := source.Parse(disk)
			if err != nil {
				return fmt.Errorf("job definition: VM %q disk %d: %w", vm.Name, i, err)
			}
			if s.WholeVM() && len(vm.Disks) != 1 {
				return fmt.Errorf("VM %q: a qemu:///PATH/qmp.sock source is the whole VM: give it as the VM's only disk", vm.Name)
			}
		}
	}
	if d.Retries.Count < 0 || d.Retries.WaitSeconds < 0 {
		return fmt.Errorf("job definition: negative retries")
	}
	switch d.Guest.Policy {
	case "", "fail", "warn":
	default:
		return fmt.Errorf("job definition: guest policy %q (want fail or warn)", d.Guest.Policy)
	}
	if d.Guest.TimeoutSeconds < 0 {
		return fmt.Errorf("job definition: negative guest timeout")
	}
	if d.ChunkSize < 0 {
		return fmt.Errorf("job definition: chunk size %d", d.ChunkSize)
	}
	return checkFormats(d)
}
