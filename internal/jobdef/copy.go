package jobdef

import (
	"fmt"
	"path"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/throttle"
)

// KindCopy copies the restore points of its repository (the source) to
// another repository (the target): the backup copy job (internal/repocopy).
const KindCopy = "copy"

// Copy is a copy job's work:
//
//	{"repository": "repo1", "password_secret": "…",
//	 "copy": {"to_repository": "offsite", "vms": ["web-*"], "newer_only": true,
//	          "to_password_secret": "…"},
//	 "retention": {"keep_last": 7}}
//
// The source is the job's repository; the target is another registered
// repository agent. VMs are shell globs of the VM names whose points are
// copied (none: every VM). NewerOnly copies, per VM, only points newer than
// the newest the target holds, so that what the job's retention removed at
// the target is not copied again. The target's password is sealed like the
// job's (ToPassword inline in a request, ToPasswordSecret stored); none:
// the target has the job's password. The job's retention applies to the
// copied VMs' points at the target, after each successful run.
type Copy struct {
	ToRepository     string   `json:"to_repository"`
	VMs              []string `json:"vms,omitempty"`
	NewerOnly        bool     `json:"newer_only,omitempty"`
	ToPassword       string   `json:"to_password,omitempty"`
	ToPasswordSecret string   `json:"to_password_secret,omitempty"`
}

// Matches reports whether the job copies the points of VM vm.
func (c Copy) Matches(vm string) bool {
	if len(c.VMs) == 0 {
		return true
	}
	for _, g := range c.VMs {
		if ok, _ := path.Match(g, vm); ok {
			return true
		}
	}
	return false
}

func (d Definition) validateCopy() error {
	if d.Repository == "" {
		return fieldErr("definition.repository", "the job names no repository (the source of the copy)")
	}
	if len(d.VMs) > 0 || len(d.Select) > 0 {
		return fieldErr("definition.vms", "a copy job backs up no VMs (copy.vms chooses the VMs whose points are copied)")
	}
	if d.Maintenance != nil {
		return fieldErr("definition.maintenance", "only a maintenance job (kind %s) does maintenance", KindMaintenance)
	}
	c := d.Copy
	if c == nil || c.ToRepository == "" {
		return fieldErr("definition.copy.to_repository", "a copy job names no target repository")
	}
	if c.ToRepository == d.Repository {
		return fieldErr("definition.copy.to_repository", "%q is the job's repository: the target must be another one", c.ToRepository)
	}
	for i, g := range c.VMs {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return fieldErr(fmt.Sprintf("definition.copy.vms[%d]", i), "%q: not a VM name glob", g)
		}
	}
	if d.ReadLimit != 0 {
		return fieldErr("definition.read_limit", "a copy job reads no disks (throttle paces its links)")
	}
	if _, err := throttle.ParseRules(strings.Join(d.Throttle, "\n"), nil); err != nil {
		return wrapField("definition.throttle", err)
	}
	if err := d.Retention.Check(); err != nil {
		field, msg, _ := strings.Cut(err.Error(), ": ")
		return fieldErr("definition.retention."+field, "%s", msg)
	}
	return checkMissed(d.Missed)
}
