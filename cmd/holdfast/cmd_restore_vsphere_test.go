package main

import (
	"strings"
	"testing"
)

// TestVSphereRestoreUsage: wrong combinations of the vSphere restore and
// rollback flags are usage errors (exit 2) that say what to do, before
// any repository or vSphere is reached.
func TestVSphereRestoreUsage(t *testing.T) {
	t.Setenv(envVSpherePassword, "")
	t.Setenv("HOLDFAST_SERVER", "")
	const dc, vm = "vsphere://u@h/DC", "vsphere://u@h/DC/vm/app"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--to-vsphere", dc, "--to", "/tmp/x"}, "--to does not go with --to-vsphere"},
		{[]string{"--to-vsphere", vm}, "want vsphere://USER@HOST/DATACENTER"},
		{[]string{"--to-vsphere", "vsphere://u:secret@h/DC"}, "a password does not go in the URL"},
		{[]string{"--to-vsphere", dc, "--datastore-path", "ds=/x"}, "--datastore-path does not go with --to-vsphere"},
		{[]string{"--to-vsphere", dc, "--network", "VM Network"}, "want NAME=VALUE"},
		{[]string{"--to-vsphere", dc, "--rollback"}, "--rollback vsphere://USER@HOST/DC/vm/"},
		{[]string{"--to-vsphere", dc}, "no vSphere password"},
		{[]string{"--rollback", vm}, "give --datastore-path NAME=DIR"},
		{[]string{"--rollback=" + dc, "--datastore-path", "ds=/x"}, "want vsphere://USER@HOST/DATACENTER/vm/"},
		{[]string{"--rollback", vm, "--datastore-path", "ds=/x", "--power-on"}, "--power-on does not go with --rollback"},
		{[]string{"--rollback", vm, "--datastore-path", "ds=/x", "--datastore-path", "ds=/y"}, `datastore "ds" given twice`},
		{[]string{"extra"}, "needs 1 argument(s), got 2"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := runInProcess(t, append([]string{"restore", "latest"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, stderr, exitUsage, tc.want)
			}
			if strings.Contains(stderr, "secret") {
				t.Errorf("the password shows: %q", stderr)
			}
		})
	}
	code, _, stderr := runInProcess(t, "restore", "latest", "--server", "https://127.0.0.1:1", "--to-vsphere", dc)
	if code != exitUsage || !strings.Contains(stderr, "needs a local repository") {
		t.Errorf("through the server: exit %d, %q", code, stderr)
	}
	// The VM may also come before POINT.
	code, _, stderr = runInProcess(t, "restore", "--rollback", vm, "latest", "--datastore-path", "ds=/x", "--name", "n")
	if code != exitUsage || !strings.Contains(stderr, "--name does not go with --rollback") {
		t.Errorf("VM before POINT: exit %d, %q", code, stderr)
	}
}
