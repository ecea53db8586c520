package main

import (
	"strings"
	"testing"
)

// TestSourceAddLibvirtRefused: a faulty libvirt source is a usage error
// before anything is sent, naming what is wrong and not the URI's user.
func TestSourceAddLibvirtRefused(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		args []string
		in   string
	}{
		{[]string{"--type", "libvirt", "--address", "qemu:///session"}, "system daemon"},
		{[]string{"--type", "libvirt", "--address", "qemu+ssh://root:pw@kvm1/system"}, "password does not go in the URI"},
		{[]string{"--type", "libvirt", "--address", "qemu:///system", "--proxy", "bad name"}, "not a proxy name"},
		{[]string{"--type", "libvirt", "--address", "qemu:///system", "--list-address", "xen:///system"}, "list_address"},
		{[]string{"--type", "libvirt", "--address", "qemu:///system", "--insecure"}, "are for --type vsphere"},
		{[]string{"--type", "image", "--address", "/images", "--proxy", "p"}, "are for --type libvirt"},
	}
	for _, tc := range tests {
		r := e.run(append([]string{"source", "add", "kvm"}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.in) || strings.Contains(r.stderr, "root") {
			t.Errorf("source add %v: exit %d %q, want %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.in)
		}
	}
}
