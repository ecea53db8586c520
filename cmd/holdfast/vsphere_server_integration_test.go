package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/object"
)

// TestDistributedVSphere: a vSphere source on the server (its password in
// a file on the server host), a job selecting the simulator's VMs by glob,
// folder and tag, resolved at each run: each selected VM is backed up by
// the proxy that reaches the vCenter as one point whose manifest has the
// VM's configuration; a selection that picks nothing warns; a VM removed
// since the last run is simply not backed up; a wrong password fails the
// session clearly; the password appears in no listing, API answer or log.
func TestDistributedVSphere(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	sim := vcsim.Start(t, nil)
	sim.CBT() // changed block tracking over the disks' files
	for _, vm := range []string{"DC0_H0_VM0", "DC0_H0_VM1", "DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"} {
		sim.SetDiskCapacity(t, vm, 0, 8<<20)
		sim.WriteDisk(t, vm, 0, 0, randomBytes(1<<20))
	}
	sim.Move(t, "/DC0/vm/prod", "/DC0/vm/DC0_H0_VM0")
	sim.Move(t, "/DC0/vm/prod/inner", "/DC0/vm/DC0_C0_RP0_VM1")
	sim.Tag(t, "tier", "gold", "/DC0/vm/DC0_C0_RP0_VM0")

	c := newCluster(t, "")
	dir := c.e.dir
	repoPath := c.addRepository("repo1", 2, nil)
	c.addProxy("near", 2, "--reach", "vsphere://"+sim.Host)
	c.addProxy("far", 2, "--reach", "vsphere://192.0.2.1") // reaches no vCenter of this test
	c.waitAgents("repo1", "near", "far")
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw := write("pw", "correct horse\n", 0o600)
	vcPW := write("vc.pw", vcsim.Password+"\n", 0o600)
	c.e.ok("source", "add", "vc1", "--type", "vsphere", "--address", sim.URL(""), "--vsphere-password-file", vcPW,
		"--tls-thumbprint", sim.Thumbprint)
	open := write("vc-open.pw", vcsim.Password+"\n", 0o644)
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.e.run("source", "add", "vcopen", "--type", "vsphere", "--address", sim.URL(""), "--vsphere-password-file", open,
		"--tls-thumbprint", sim.Thumbprint); r.code != 0 || !strings.Contains(r.stderr, "warning: vSphere password file") {
		t.Errorf("a password file others may read: exit %d %s", r.code, r.stderr)
	}

	c.e.ok("job", "create", "vcjob", "--repository", "repo1", "--password-file", pw,
		"--vms-from", "vc1=DC0_H0_*", "--vms-from", "vc1=folder:/DC0/vm/prod", "--vms-from", "vc1=tag:tier/gold",
		"--vms-from", "vc1=nomatch*")
	if show := c.e.ok("job", "show", "vcjob"); !strings.Contains(show, "vc1=folder:/DC0/vm/prod") {
		t.Errorf("job show: %s", show)
	}
	want := []string{"DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1", "DC0_H0_VM0", "DC0_H0_VM1"}
	r1 := c.runJobAny("vcjob")
	checkVSphereRun(t, c, r1, want, "selection vc1=name:nomatch* picks no VM")
	for _, vm := range r1.VMs {
		if d := vm.Disks[0]; len(vm.Disks) != 1 || d.BytesTotal != 8<<20 || d.BytesRead != 1<<20 || d.Transport != "nbd" {
			t.Errorf("first backup of %s: %+v", vm.Name, vm.Disks)
		}
	}

	// The manifests carry the VMs' configuration.
	ctx := context.Background()
	rp, err := repo.Open(ctx, storage.NewLocal(repoPath), []byte("correct horse"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := rp.ListPoints(ctx)
	rp.Close()
	if err != nil || len(ms) != 4 {
		t.Fatalf("points in the repository: %d, %v", len(ms), err)
	}
	for _, m := range ms {
		if m.Config == nil || m.Config.Platform != "vsphere" || m.Config.Name != m.VM || m.Config.CPUs == 0 ||
			len(m.Config.Disks) != 1 || m.Config.Disks[0].CapacityBytes != 8<<20 {
			t.Errorf("point %s of %s: config %+v", m.ID, m.VM, m.Config)
		}
	}

	// A VM removed since the last run is simply not backed up.
	ref, err := object.NewSearchIndex(sim.Connect(t).Client).FindByInventoryPath(ctx, "/DC0/vm/DC0_C0_RP0_VM0")
	if err != nil || ref == nil {
		t.Fatal(err)
	}
	vm := ref.(*object.VirtualMachine)
	for _, op := range []func(context.Context) (*object.Task, error){vm.PowerOff, vm.Destroy} {
		task, err := op(ctx)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatalf("remove the VM: %v", err)
		}
	}
	// The next run reads only what changed since the VM's previous point
	// (its change IDs go to the proxy with the previous manifest).
	sim.WriteDisk(t, "DC0_H0_VM0", 0, 4<<20, randomBytes(64<<10))
	r2 := c.runJobAny("vcjob")
	checkVSphereRun(t, c, r2, want[1:], "selection vc1=tag:tier/gold picks no VM", "selection vc1=name:nomatch* picks no VM")
	for _, vm := range r2.VMs {
		changed := int64(0)
		if vm.Name == "DC0_H0_VM0" {
			changed = repo.DefaultChunkSize // the chunk holding the 64 KiB written
		}
		if d := vm.Disks[0]; d.BytesRead != changed {
			t.Errorf("incremental backup of %s read %d bytes, want %d", vm.Name, d.BytesRead, changed)
		}
	}
	if out := c.e.ok("job", "run", "vcjob", "--wait"); !strings.Contains(out, "  warning: selection vc1=tag:tier/gold picks no VM") {
		t.Errorf("job run --wait does not show the session's warnings:\n%s", out)
	}

	// A proxy that sees the datastore (--datastore-path) offers direct
	// storage access, which a job may ask for.
	c.kill(c.procs["near"])
	c.addProxy("near", 2, "--reach", "vsphere://"+sim.Host, "--datastore-path", "LocalDS_0="+sim.DatastoreDir(t, "LocalDS_0"))
	c.waitAgents("near")
	c.e.ok("job", "edit", "vcjob", "--transport", "direct")
	r3 := c.runJobAny("vcjob")
	checkVSphereRun(t, c, r3, want[1:], "selection vc1=tag:tier/gold picks no VM", "selection vc1=name:nomatch* picks no VM")
	for _, vm := range r3.VMs {
		if d := vm.Disks[0]; d.Transport != "direct" {
			t.Errorf("backup of %s with --transport direct: %+v", vm.Name, d)
		}
	}

	// A wrong password in the file fails the session with a clear error.
	wrong := write("vc-wrong.pw", "not-the-password\n", 0o600)
	c.e.ok("source", "add", "vcwrong", "--type", "vsphere", "--address", sim.URL(""), "--vsphere-password-file", wrong,
		"--tls-thumbprint", sim.Thumbprint)
	c.e.ok("job", "create", "wrongjob", "--repository", "repo1", "--password-file", pw, "--vms-from", "vcwrong")
	if r := c.e.run("job", "run", "wrongjob", "--wait", "--json"); r.code == 0 ||
		!strings.Contains(r.stdout+r.stderr, "incorrect user name or password") {
		t.Errorf("wrong vSphere password: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// So does a password file gone from the server host since the source
	// was added.
	gone := write("vc-gone.pw", vcsim.Password+"\n", 0o600)
	c.e.ok("source", "add", "vcgone", "--type", "vsphere", "--address", sim.URL(""), "--vsphere-password-file", gone,
		"--tls-thumbprint", sim.Thumbprint)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	c.e.ok("job", "create", "gonejob", "--repository", "repo1", "--password-file", pw, "--vms-from", "vcgone")
	if r := c.e.run("job", "run", "gonejob", "--wait"); r.code == 0 ||
		!strings.Contains(r.stdout+r.stderr, "vSphere password file "+gone+" on the server: no such file or directory") {
		t.Errorf("a missing vSphere password file: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}

	// The password is in no listing, API answer or log.
	outputs := []string{c.e.ok("source", "list"), c.e.ok("source", "list", "--json"), c.e.ok("job", "show", "vcjob"),
		c.e.ok("session", "show", strconv.FormatInt(r1.Session, 10), "--json"), apiGet(t, c, "/api/v1/sources"), apiGet(t, c, "/api/v1/sources/vc1"),
		apiGet(t, c, "/api/v1/jobs/vcjob"), apiGet(t, c, "/api/v1/audit?limit=1000"),
		c.server.out.String(), c.server.errOut.String()}
	for _, p := range c.procs {
		outputs = append(outputs, p.out.String(), p.errOut.String())
	}
	if !strings.Contains(outputs[0], "vc1") || !strings.Contains(outputs[4], vcPW) {
		t.Errorf("source list %q / API %q do not show the source and its password file", outputs[0], outputs[4])
	}
	for i, out := range outputs {
		if strings.Contains(out, vcsim.Password) {
			t.Errorf("output %d holds the vCenter password:\n%s", i, out)
		}
	}
}

// checkVSphereRun checks a run of the vSphere job: the VMs want backed up
// (each one point, on the proxy "near"), and the session's warnings (the
// selections that pick nothing).
func checkVSphereRun(t *testing.T, c *cluster, r jobResult, want []string, warnings ...string) {
	t.Helper()
	var got []string
	for _, vm := range r.VMs {
		got = append(got, vm.Name)
		if vm.Status != "success" || vm.Point == "" || len(vm.Disks) == 0 {
			t.Errorf("VM %s: %+v", vm.Name, vm)
		}
		for _, d := range vm.Disks {
			if d.Proxy != "near" {
				t.Errorf("VM %s ran on %s, which does not reach the vCenter", vm.Name, d.Proxy)
			}
		}
	}
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("backed up %v, want %v", got, want)
	}
	var se struct {
		Result struct {
			Status   string   `json:"status"`
			Warnings []string `json:"warnings"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(c.e.ok("session", "show", strconv.FormatInt(r.Session, 10), "--json")), &se); err != nil {
		t.Fatal(err)
	}
	if r.Status != "warning" || se.Result.Status != "warning" || strings.Join(se.Result.Warnings, "|") != strings.Join(warnings, "|") {
		t.Errorf("session %d: status %s, result %+v", r.Session, r.Status, se.Result)
	}
}

// apiGet is a GET on the server's API as the administrator (fails unless 200).
func apiGet(t *testing.T, c *cluster, path string) string {
	t.Helper()
	code, body := c.apiDo(context.Background(), "GET", path, "")
	if code != 200 {
		t.Fatalf("GET %s: HTTP %d %s", path, code, body)
	}
	return body
}
