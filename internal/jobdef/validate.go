package jobdef

import (
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/fsmap"
	"path/filepath"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/throttle"
)

// Validate checks everything a run of the definition needs that can be
// known before it runs: a repository, VMs listed or selected, valid VM
// names with disks, retention, chunk size, transport, read limit, traffic
// rules, retries, guest options and image formats. The error names the
// first faulty field and wraps ErrInvalid.
func (d Definition) Validate() error {
	if d.Repository == "" {
		return fieldErr("definition.repository", "the job names no repository")
	}
	if d.Maintenance != nil {
		return fieldErr("definition.maintenance", "only a maintenance job (kind %s) does maintenance", KindMaintenance)
	}
	if d.Copy != nil {
		return fieldErr("definition.copy", "only a copy job (kind %s) copies", KindCopy)
	}
	if err := checkMissed(d.Missed); err != nil {
		return err
	}
	if len(d.VMs) == 0 && len(d.Select) == 0 {
		return fieldErr("definition.vms", "the job lists no VMs (list vms or select them from a source)")
	}
	for i, sel := range d.Select {
		if sel.Source == "" {
			return fieldErr(fmt.Sprintf("definition.select[%d].source", i), "a VM selection without a source")
		}
		if err := sel.Check(); err != nil {
			return wrapField(fmt.Sprintf("definition.select[%d]", i), err)
		}
	}
	// Listed VMs must have valid names; a VM selected from a source with
	// an invalid name fails alone when its session runs.
	for i, vm := range d.VMs {
		if err := repo.ValidateVMName(vm.Name); err != nil {
			return wrapField(fmt.Sprintf("definition.vms[%d].name", i), err)
		}
	}
	return d.CheckVMs()
}

// CheckVMs checks the VMs (listed, and selected once resolved) and the
// options that apply to each; Validate calls it.
func (d Definition) CheckVMs() error {
	seen := map[string]bool{}
	for i, vm := range d.VMs {
		field := fmt.Sprintf("definition.vms[%d]", i)
		if vm.Name == "" {
			return fieldErr(field+".name", "a VM without a name")
		}
		if seen[vm.Name] {
			return fieldErr(field+".name", "VM %q listed twice", vm.Name)
		}
		seen[vm.Name] = true
		if err := checkDisks(vm); err != nil {
			return wrapField(field+".disks", err)
		}
	}
	return d.checkOptions()
}

// checkDisks checks a VM's disk list.
func checkDisks(vm VM) error {
	if len(vm.Disks) == 0 {
		return fmt.Errorf("VM %q lists no disks: give NAME=DISK, or select VMs from a source", vm.Name)
	}
	for _, disk := range vm.Disks {
		if disk == "" {
			return fmt.Errorf("VM %q: an empty disk", vm.Name)
		}
		s, err := ParseDisk(disk)
		if err != nil {
			return fmt.Errorf("VM %q: %w", vm.Name, err)
		}
		if s.WholeVM() && len(vm.Disks) != 1 {
			return fmt.Errorf("VM %q: a qemu:///PATH/qmp.sock or libvirt:///DOMAIN source is the whole VM: give it as the VM's only disk", vm.Name)
		}
	}
	return nil
}

// ParseDisk parses a disk's source and refuses a relative path in it (a
// file, an NBD socket, a QMP socket): a proxy opens it, where a relative
// path would resolve in the proxy's working directory.
func ParseDisk(disk string) (source.Spec, error) {
	s, err := source.Parse(disk)
	if err != nil {
		return s, err
	}
	if s.Path != "" && s.Kind != source.KindLibvirt && !filepath.IsAbs(s.Path) { // a domain's Path is its name
		return s, fmt.Errorf("disk %q: a relative path would resolve in the proxy's working directory: give an absolute path", s)
	}
	return s, nil
}

// checkOptions checks the options that are not VMs.
func (d Definition) checkOptions() error {
	if err := d.checkRPO(); err != nil {
		return err
	}
	if err := d.Retention.Check(); err != nil {
		field, msg, _ := strings.Cut(err.Error(), ": ")
		return fieldErr("definition.retention."+field, "%s", msg)
	}
	if d.ChunkSize != 0 {
		if err := repo.ValidateChunkSize(d.ChunkSize); err != nil {
			return wrapField("definition.chunk_size", err)
		}
	}
	if d.Transport != "" {
		if _, err := source.ParsePreference(d.Transport); err != nil {
			return fieldErr("definition.transport", "%q: want %s", d.Transport, source.PreferenceNames())
		}
	}
	for _, p := range d.ExcludePaths {
		if err := fsmap.ValidatePath(p); err != nil {
			return wrapField("definition.exclude_paths", err)
		}
	}
	if d.ReadLimit < 0 {
		return fieldErr("definition.read_limit", "negative (%d)", d.ReadLimit)
	}
	if _, err := throttle.ParseRules(strings.Join(d.Throttle, "\n"), nil); err != nil {
		return wrapField("definition.throttle", err)
	}
	if d.Retries.Count < 0 {
		return fieldErr("definition.retries.count", "negative retries (%d)", d.Retries.Count)
	}
	if d.Retries.WaitSeconds < 0 {
		return fieldErr("definition.retries.wait_seconds", "negative retries wait (%d)", d.Retries.WaitSeconds)
	}
	if err := d.Guest.check(); err != nil {
		return err
	}
	if err := d.ScanAfter.check(); err != nil {
		return err
	}
	return d.checkFormats()
}

// check validates the guest options.
func (g Guest) check() error {
	switch g.Policy {
	case "", "fail", "warn":
	default:
		return fieldErr("definition.guest.policy", "%q: want fail or warn", g.Policy)
	}
	if g.TimeoutSeconds < 0 {
		return fieldErr("definition.guest.timeout_seconds", "negative guest timeout (%d)", g.TimeoutSeconds)
	}
	return nil
}
