package qmp

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFleecing runs the point-in-time export recipe of docs/qmp.md on a
// real VM: persistent bitmap, guest writes, one transaction freezing the
// bitmap and starting the fleecing job, an NBD export of the snapshot, its
// content and dirty bitmap checked from outside, the teardown with its
// events, and a clean quit that stores the bitmap.
func TestFleecing(t *testing.T) {
	needTools(t, "qemu-system-x86_64", "qemu-img", "qemu-io")
	dir := t.TempDir()
	disk := newDisk(t, dir, "d.qcow2")
	run(t, "qemu-io", "-f", "qcow2", disk, "-c", "write -q -P 0xaa 0 1M")
	p := startVM(t, dir, disk)
	ctx := testContext(t, 40*time.Second)
	c := dialProc(t, ctx, p)

	all := c.Subscribe()
	defer all.Close()
	checkVMQueries(t, ctx, c, disk)
	mustExec(t, ctx, c, "block-dirty-bitmap-add", BitmapAdd{Node: "disk0", Name: "bm0", Persistent: true}, nil)
	guestWrite(t, ctx, c, "write -P 0xcc 1M 64k") // before the snapshot: dirty in bm0
	if bm := bitmap(t, ctx, c, "bm0"); bm.Count != 64<<10 || !bm.Persistent || !bm.Recording {
		t.Fatalf("bm0 after a 64k write: %+v", bm)
	}

	fleece := filepath.Join(dir, "fleece.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", fleece, "64M")
	mustExec(t, ctx, c, "blockdev-add", map[string]any{
		"driver": "qcow2", "node-name": "fleece", "discard": "unmap", "backing": "disk0",
		"file": map[string]any{"driver": "file", "filename": fleece},
	}, nil)

	jobs := c.Subscribe("JOB_STATUS_CHANGE")
	defer jobs.Close()
	err := c.Transaction(ctx, []Action{
		AddBitmap(BitmapAdd{Node: "disk0", Name: "bm0-frozen", Disabled: true}),
		MergeBitmaps(BitmapMerge{Node: "disk0", Target: "bm0-frozen", Bitmaps: []string{"bm0"}}),
		ClearBitmap("disk0", "bm0"),
		Backup(BlockdevBackup{JobID: "fleecejob", Device: "disk0", Target: "fleece", Sync: "none"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	running := func(e Event) bool { return e.Field("id") == "fleecejob" && e.Field("status") == "running" }
	if _, err := jobs.Wait(ctx, "JOB_STATUS_CHANGE", running); err != nil {
		t.Fatal(err)
	}
	checkJob(t, ctx, c)

	// After the snapshot: must not show in the export, but in bm0.
	guestWrite(t, ctx, c, "write -P 0xdd 0 64k")
	guestWrite(t, ctx, c, "write -P 0xee 8M 64k")

	nbdSock := filepath.Join(dir, "nbd.sock")
	mustExec(t, ctx, c, "nbd-server-start", map[string]any{
		"addr": map[string]any{"type": "unix", "data": map[string]any{"path": nbdSock}},
	}, nil)
	mustExec(t, ctx, c, "block-export-add", map[string]any{
		"type": "nbd", "id": "exp0", "node-name": "fleece", "name": "snap",
		"writable": false, "bitmaps": []string{"bm0-frozen"},
	}, nil)
	checkExport(t, dir, "nbd+unix:///snap?socket="+nbdSock)

	teardown(t, ctx, c, false)
	if bm := bitmap(t, ctx, c, "bm0"); bm.Count != 128<<10 {
		t.Errorf("bm0 after two 64k writes past the snapshot: %+v", bm)
	}
	logEvents(t, all)
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	if info := run(t, "qemu-img", "info", "--output=json", disk); !strings.Contains(info, `"name": "bm0"`) {
		t.Errorf("bm0 not stored in the image after quit:\n%s", info)
	}
}

func checkVMQueries(t *testing.T, ctx context.Context, c *Client, disk string) {
	t.Helper()
	st, err := c.QueryStatus(ctx)
	if err != nil || st.Running || st.Status != "prelaunch" {
		t.Errorf("query-status of a -S VM: %+v, %v", st, err)
	}
	devs, err := c.QueryBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 {
		t.Fatalf("query-block: %+v", devs)
	}
	d := devs[0]
	t.Logf("query-block: device=%q qdev=%q node=%q file=%q", d.Device, d.QDev, d.NodeName(), d.Inserted.File)
	if d.QDev != "/machine/peripheral/vda/virtio-backend" || d.NodeName() != "disk0" ||
		d.Inserted.Image.Format != "qcow2" || d.Inserted.Image.VirtualSize != 64<<20 ||
		d.Inserted.Image.Filename != disk {
		t.Errorf("query-block: %+v, inserted %+v", d, d.Inserted)
	}
}

// guestWrite writes through the guest device with HMP qemu-io. Its result
// goes to QEMU's stdout: the HMP reply is empty even when the I/O fails.
func guestWrite(t *testing.T, ctx context.Context, c *Client, io string) {
	t.Helper()
	out, err := c.HumanMonitorCommand(ctx, `qemu-io -d /machine/peripheral/vda/virtio-backend "`+io+`"`)
	if err != nil || out != "" {
		t.Fatalf("guest %s: %q, %v", io, out, err)
	}
}

func bitmap(t *testing.T, ctx context.Context, c *Client, name string) DirtyBitmap {
	t.Helper()
	nodes, err := c.QueryNamedBlockNodes(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		for _, b := range n.DirtyBitmaps {
			if n.NodeName == "disk0" && b.Name == name {
				return b
			}
		}
	}
	t.Fatalf("no bitmap %s on disk0", name)
	return DirtyBitmap{}
}

func checkJob(t *testing.T, ctx context.Context, c *Client) {
	t.Helper()
	jobs, err := c.BlockJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Device != "fleecejob" || jobs[0].Type != "backup" || jobs[0].Status != "running" {
		t.Fatalf("query-block-jobs: %+v", jobs)
	}
}

// checkExport compares the export with the expected snapshot content and
// reads its dirty bitmap.
func checkExport(t *testing.T, dir, url string) {
	t.Helper()
	ref := filepath.Join(dir, "ref.raw")
	run(t, "qemu-img", "create", "-q", "-f", "raw", ref, "64M")
	run(t, "qemu-io", "-f", "raw", ref, "-c", "write -q -P 0xaa 0 1M", "-c", "write -q -P 0xcc 1M 64k")
	run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", url, ref)
	if _, err := exec.LookPath("nbdinfo"); err != nil {
		t.Log("nbdinfo not installed: dirty bitmap of the export not checked")
		return
	}
	m := run(t, "nbdinfo", "--map=qemu:dirty-bitmap:bm0-frozen", url)
	var dirty []string
	for _, line := range strings.Split(m, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[3] == "dirty" {
			dirty = append(dirty, f[0]+"+"+f[1])
		}
	}
	if len(dirty) != 1 || dirty[0] != "1048576+65536" {
		t.Errorf("dirty extents of bm0-frozen: %v, want [1048576+65536]\n%s", dirty, m)
	}
}

// teardown removes the export, the job, the fleece node, the frozen bitmap
// and the NBD server, waiting for the events that confirm each step. With
// failed set it first merges the frozen bitmap back into bm0, as a failed
// backup must (possible only once the export is gone).
func teardown(t *testing.T, ctx context.Context, c *Client, failed bool) {
	t.Helper()
	ev := c.Subscribe("BLOCK_EXPORT_DELETED", "BLOCK_JOB_CANCELLED", "JOB_STATUS_CHANGE")
	defer ev.Close()
	mustExec(t, ctx, c, "block-export-del", map[string]any{"id": "exp0"}, nil)
	if _, err := ev.Wait(ctx, "BLOCK_EXPORT_DELETED", MatchField("id", "exp0")); err != nil {
		t.Fatal(err)
	}
	if failed {
		mustExec(t, ctx, c, "block-dirty-bitmap-merge",
			BitmapMerge{Node: "disk0", Target: "bm0", Bitmaps: []string{"bm0-frozen"}}, nil)
	}
	mustExec(t, ctx, c, "block-job-cancel", map[string]any{"device": "fleecejob"}, nil)
	e, err := ev.Wait(ctx, "BLOCK_JOB_CANCELLED", MatchField("device", "fleecejob"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BLOCK_JOB_CANCELLED %s", e.Data)
	gone := func(e Event) bool { return e.Field("id") == "fleecejob" && e.Field("status") == "null" }
	if _, err := ev.Wait(ctx, "JOB_STATUS_CHANGE", gone); err != nil {
		t.Fatal(err)
	}
	mustExec(t, ctx, c, "blockdev-del", map[string]any{"node-name": "fleece"}, nil)
	mustExec(t, ctx, c, "block-dirty-bitmap-remove", Bitmap{"disk0", "bm0-frozen"}, nil)
	mustExec(t, ctx, c, "nbd-server-stop", nil, nil)
	if jobs, err := c.BlockJobs(ctx); err != nil || len(jobs) != 0 {
		t.Errorf("jobs after teardown: %+v, %v", jobs, err)
	}
}

// logEvents logs the queued events (docs/qmp.md lists them).
func logEvents(t *testing.T, s *Subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	for {
		e, err := s.Next(ctx)
		if err != nil {
			return
		}
		t.Logf("event %s %s", e.Name, e.Data)
	}
}
