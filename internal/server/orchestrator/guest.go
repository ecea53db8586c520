package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/guest"
)

// GuestResult is one guest script run, as the session result shows it.
type GuestResult struct {
	Script   string  `json:"script"` // pre-freeze or post-thaw
	Via      string  `json:"via,omitempty"`
	ExitCode int     `json:"exit_code"`
	Output   string  `json:"output,omitempty"` // combined, at most 64 KiB (the tail)
	Duration float64 `json:"duration_seconds"`
	HostKey  string  `json:"host_key,omitempty"`
	Fallback string  `json:"fallback,omitempty"` // why the guest agent was used instead of SSH
	Error    string  `json:"error,omitempty"`
}

// guestTarget is how the server reaches the VM's guest.
func (vm *vmRun) guestTarget() guest.Target {
	t := guest.Target{AgentSocket: vm.def.GuestAgent}
	if vm.def.GuestSSH != "" {
		user := vm.sess.def.Guest.User
		if user == "" {
			user = "root"
		}
		t.SSH = &guest.SSHTarget{Addr: vm.def.GuestSSH, User: user, Key: vm.sess.guestKey, HostKey: vm.def.GuestHostKey}
	}
	return t
}

// runGuestScript runs one script and records it. It returns an error only
// when the script failed and the job's policy is to fail the VM; with the
// warn policy the failure becomes a warning of the VM.
func (or *Orchestrator) runGuestScript(ctx context.Context, vm *vmRun, name, body string) error {
	if body == "" {
		return nil
	}
	g := vm.sess.def.Guest
	timeout := time.Duration(g.TimeoutSeconds) * time.Second
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	res, err := guest.Run(ctx, vm.guestTarget(), guest.Script{Name: name, Body: body}, timeout)
	gr := GuestResult{Script: name, Via: res.Via, ExitCode: res.ExitCode, Output: res.Output,
		Duration: res.Duration.Seconds(), HostKey: res.HostKey, Fallback: res.Fallback}
	if err != nil {
		gr.Error = err.Error()
	}
	or.mu.Lock()
	vm.guest = append(vm.guest, gr)
	or.mu.Unlock()
	or.log.Info("guest script", "session", vm.sess.id, "vm", vm.name, "script", name, "via", res.Via,
		"exit_code", res.ExitCode, "err", err)
	switch {
	case err == nil:
		if vm.def.GuestSSH != "" && vm.def.GuestHostKey == "" && res.HostKey != "" {
			or.warnVM(vm, fmt.Sprintf("guest %s: host key %s accepted without a pinned key (set guest_host_key)", name, res.HostKey))
		}
		if res.Fallback != "" {
			or.warnVM(vm, fmt.Sprintf("guest %s ran through the guest agent: %s", name, res.Fallback))
		}
		return nil
	case g.Policy == "warn" && !errors.Is(err, guest.ErrHostKeyMismatch):
		or.warnVM(vm, fmt.Sprintf("guest %s failed (policy warn, backup continues): %v", name, err))
		return nil
	}
	return fmt.Errorf("guest %s: %w", name, err)
}
