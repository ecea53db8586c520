package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
	"github.com/holdfast-backup/holdfast/internal/testutil/libvirtd"
)

// serverDomain is a running domain of the server test and its disk as the
// guest wrote it.
type serverDomain struct {
	m        *libvirtd.Domain
	expected []byte
}

func (sd *serverDomain) write(t *testing.T, off, n int, b byte) {
	t.Helper()
	sd.m.Write(t, b, int64(off), int64(n))
	copy(sd.expected[off:off+n], bytes.Repeat([]byte{b}, n))
}

// vmsByName indexes a session's VMs.
func vmsByName(t *testing.T, r jobResult, want ...string) map[string]int {
	t.Helper()
	idx := map[string]int{}
	var names []string
	for i, vm := range r.VMs {
		idx[vm.Name] = i
		names = append(names, vm.Name)
		if vm.Status != "success" || vm.Point == "" || len(vm.Disks) != 1 || vm.Disks[0].Proxy != "kvm1" ||
			vm.Disks[0].Transport != "hotadd" || vm.Disks[0].BytesTotal != 32<<20 {
			t.Fatalf("VM %s: %+v", vm.Name, vm)
		}
	}
	slices.Sort(names)
	if r.Status != "success" || !slices.Equal(names, want) {
		t.Fatalf("session backed up %v (%s), want %v: %+v", names, r.Status, want, r)
	}
	return idx
}

// TestServerLibvirtSource: a libvirt source on the server (a private
// libvirtd, its proxy on the "hypervisor host") — a job selecting 'web*'
// backs up exactly the matching domains, one task per domain on the
// source's proxy though another proxy could take any task; the second run
// is incremental (reads only the written chunks); a domain defined after
// the job was created is backed up by the next run; a job selecting by
// Holdfast metadata takes only the tagged domain; a selection that picks
// nothing fails its session saying so; every point restores identical.
func TestServerLibvirtSource(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	d := libvirtd.Start(t)
	c := newCluster(t, "")
	dir := c.e.dir
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	c.e.vars = append(c.e.vars, "TMPDIR="+tmp) // the proxy's libvirt run directories
	doms := map[string]*serverDomain{}
	start := func(name string) {
		doms[name] = &serverDomain{m: d.StartDomain(t, name, 32), expected: make([]byte, 32<<20)}
	}
	for _, n := range []string{"web1", "web2", "db1"} {
		start(n)
	}
	doms["web1"].write(t, 0, 1<<20, 0x11)
	doms["web2"].write(t, 8<<20, 512<<10, 0x22)
	doms["db1"].write(t, 0, 1<<20, 0x33)

	c.e.ok("repo", "init", "--repo", filepath.Join(dir, "repo1"), "--chunk-size", "256KiB")
	tok := strings.TrimSpace(c.e.ok("repository", "token"))
	c.procs["repo1"] = c.proc("repository", "--name", "repo1", "--path", filepath.Join(dir, "repo1"), "--join-token", tok,
		"--listen", freeAddr(t))
	c.addProxy("kvm1", 2, "--restore-root", dir) // on the hypervisor host
	c.addProxy("other", 2)                       // reaches everything, but is not the source's proxy
	c.waitAgents("repo1", "kvm1", "other")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.e.ok("source", "add", "kvm", "--type", "libvirt", "--address", d.URI, "--proxy", "kvm1")
	if !strings.Contains(out, "added source kvm (libvirt") {
		t.Errorf("source add: %s", out)
	}
	if out := c.e.ok("source", "list"); !strings.Contains(out, "kvm") || !strings.Contains(out, "libvirt") {
		t.Errorf("source list:\n%s", out)
	}
	c.e.ok("job", "create", "web", "--repository", "repo1", "--password-file", pw, "--vms-from", "kvm=web*")

	r1 := c.runJob("web")
	idx := vmsByName(t, r1, "web1", "web2")
	if b := r1.VMs[idx["web1"]].Disks[0].BytesRead; b != 1<<20 {
		t.Errorf("web1 full read %d bytes, want the 1 MiB written", b)
	}
	if b := r1.VMs[idx["web2"]].Disks[0].BytesRead; b != 512<<10 {
		t.Errorf("web2 full read %d bytes, want the 512 KiB written", b)
	}
	if se := c.session(r1.Session); len(se.Tasks) != 2 {
		t.Errorf("session tasks %+v, want one per domain", se.Tasks)
	}
	points := map[string][]byte{}
	for _, vm := range r1.VMs {
		points[vm.Point] = bytes.Clone(doms[vm.Name].expected)
	}

	// Incremental: web1 reads its 3 written chunks, web2 nothing. web3,
	// defined after the job, is picked up; db1 never is.
	doms["web1"].write(t, 4<<20, 256<<10, 0x44)
	doms["web1"].write(t, 20<<20+100, 300<<10, 0x55) // crosses into a second chunk
	start("web3")
	doms["web3"].write(t, 2<<20, 256<<10, 0x66)
	r2 := c.runJob("web")
	idx = vmsByName(t, r2, "web1", "web2", "web3")
	for name, want := range map[string]int64{"web1": 3 * 256 << 10, "web2": 0, "web3": 256 << 10} {
		if b := r2.VMs[idx[name]].Disks[0].BytesRead; b != want {
			t.Errorf("second run: %s read %d bytes, want %d", name, b, want)
		}
	}
	for _, vm := range r2.VMs {
		points[vm.Point] = bytes.Clone(doms[vm.Name].expected)
	}
	// Each domain keeps Holdfast's latest checkpoint only, and no job.
	for _, name := range []string{"web1", "web2", "web3"} {
		cps, err := d.Virsh(context.Background(), "checkpoint-list", name, "--name")
		if err != nil || len(strings.Fields(cps)) != 1 || !strings.HasPrefix(strings.TrimSpace(cps), "holdfast-") {
			t.Errorf("%s checkpoints %q %v", name, cps, err)
		}
		if info, err := d.Virsh(context.Background(), "domjobinfo", name); err != nil || !strings.Contains(info, "None") {
			t.Errorf("%s: a job is left: %s %v", name, info, err)
		}
	}
	if ents, err := os.ReadDir(tmp); err != nil || len(ents) != 0 {
		t.Errorf("left in the proxy's run directory: %v %v", ents, err)
	}

	// By Holdfast metadata: only db1 carries tier="gold".
	if _, err := d.Virsh(context.Background(), "metadata", "db1", libvirt.MetadataNamespace, "--key", "hf", "--set", `<backup tier="gold"/>`); err != nil {
		t.Fatal(err)
	}
	c.e.ok("job", "create", "gold", "--repository", "repo1", "--password-file", pw, "--vms-from", "kvm=metadata:tier=gold")
	r3 := c.runJob("gold")
	vmsByName(t, r3, "db1")
	points[r3.VMs[0].Point] = bytes.Clone(doms["db1"].expected)

	// Nothing matching: the run is refused and says why.
	c.e.ok("job", "create", "none", "--repository", "repo1", "--password-file", pw, "--vms-from", "kvm=mail*")
	if r := c.e.run("job", "run", "none", "--wait"); r.code != exitFailure || !strings.Contains(r.stderr, "job none selects no VMs") ||
		!strings.Contains(r.stderr, "kvm=name:mail* picks no VM (the daemon lists 4 domains)") {
		t.Errorf("a selection of nothing: exit %d %s", r.code, r.stderr)
	}

	for id, want := range points {
		out := filepath.Join(dir, "restored-"+id+".img")
		c.e.ok("restore", id, "--disk", "0", "--to", out)
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("restore of point %s differs from the disk at its time (%v)", id, err)
		}
	}
	t.Logf("%d points restored identical; sessions %s", len(points), strconv.FormatInt(r2.Session, 10))
}
