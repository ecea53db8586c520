package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestStorageDaemonQueries(t *testing.T) {
	needTools(t, "qemu-storage-daemon", "qemu-img")
	dir := t.TempDir()
	p := startQSD(t, dir, newDisk(t, dir, "d.qcow2"))
	ctx := testContext(t, 20*time.Second)
	c := dialProc(t, ctx, p)

	g := c.Greeting()
	t.Logf("greeting: %+v", g)
	if g.Version.Major < 6 {
		t.Errorf("greeting version %v", g.Version)
	}
	nodes, err := c.QueryNamedBlockNodes(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]BlockNode{}
	for _, n := range nodes {
		byName[n.NodeName] = n
	}
	d := byName["disk0"]
	if d.Driver != "qcow2" || d.Image.Format != "qcow2" || d.Image.VirtualSize != 64<<20 || d.File != p.dir+"/d.qcow2" {
		t.Errorf("disk0 = %+v", d)
	}
	if byName["proto0"].Driver != "file" {
		t.Errorf("proto0 = %+v", byName["proto0"])
	}
	devs, err := c.QueryBlock(ctx)
	t.Logf("qsd query-block: %+v, %v", devs, err)
	_, err = c.QueryStatus(ctx)
	t.Logf("qsd query-status: %v", err)
	_, err = c.HumanMonitorCommand(ctx, "info block")
	t.Logf("qsd human-monitor-command: %v", err)
}

func TestErrors(t *testing.T) {
	needTools(t, "qemu-storage-daemon", "qemu-img")
	dir := t.TempDir()
	p := startQSD(t, dir, newDisk(t, dir, "d.qcow2"))
	ctx := testContext(t, 20*time.Second)
	c := dialProc(t, ctx, p)

	err := c.Execute(ctx, "no-such-command", nil, nil)
	var qerr *Error
	if !errors.As(err, &qerr) || qerr.Class != ClassCommandNotFound || qerr.Command != "no-such-command" {
		t.Fatalf("unknown command: %v", err)
	}
	t.Logf("unknown command: %v", err)
	err = c.Execute(ctx, "block-dirty-bitmap-add", BitmapAdd{Node: "nosuch", Name: "bm0"}, nil)
	if !IsClass(err, ClassGenericError) {
		t.Fatalf("bad node: %v", err)
	}
	t.Logf("bad node: %v", err)
	err = c.Execute(ctx, "block-dirty-bitmap-add", map[string]any{"node": "disk0"}, nil)
	t.Logf("missing argument: %v", err)
	if !IsClass(err, ClassGenericError) {
		t.Fatalf("missing argument: %v", err)
	}
	err = c.Execute(ctx, "block-job-cancel", map[string]any{"device": "nojob"}, nil)
	t.Logf("cancel unknown job: %v", err)
	mustExec(t, ctx, c, "block-dirty-bitmap-add", BitmapAdd{Node: "disk0", Name: "bm0", Persistent: true}, nil)
	err = c.Execute(ctx, "block-dirty-bitmap-add", BitmapAdd{Node: "disk0", Name: "bm0", Persistent: true}, nil)
	t.Logf("duplicate bitmap: %v", err)
	// A reply of the wrong shape is a decoding error, not a panic.
	var wrong int
	if err := c.Execute(ctx, "query-version", nil, &wrong); err == nil {
		t.Fatal("decoding query-version into an int succeeded")
	}
	// The connection is still usable after errors.
	mustExec(t, ctx, c, "query-version", nil, nil)
}

func TestConcurrentExecute(t *testing.T) {
	needTools(t, "qemu-storage-daemon", "qemu-img")
	dir := t.TempDir()
	p := startQSD(t, dir, newDisk(t, dir, "d.qcow2"))
	ctx := testContext(t, 30*time.Second)
	c := dialProc(t, ctx, p)

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				// Each caller adds and queries its own bitmap: a mixed-up
				// reply would show another caller's name.
				name := fmt.Sprintf("g%d-%d", g, i)
				if err := c.Execute(ctx, "block-dirty-bitmap-add", BitmapAdd{Node: "disk0", Name: name}, nil); err != nil {
					errs <- err
					return
				}
				var v json.RawMessage
				if err := c.Execute(ctx, "query-version", nil, &v); err != nil {
					errs <- err
					return
				}
				err := c.Execute(ctx, "block-dirty-bitmap-remove", Bitmap{"disk0", name + "-missing"}, nil)
				if !IsClass(err, ClassGenericError) {
					errs <- fmt.Errorf("remove missing bitmap %s: %v", name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	nodes, err := c.QueryNamedBlockNodes(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.NodeName == "disk0" && len(n.DirtyBitmaps) != 200 {
			t.Errorf("disk0 has %d bitmaps, want 200", len(n.DirtyBitmaps))
		}
	}
}

// A QEMU monitor serves one client at a time: a second client gets no
// greeting until the first one leaves.
func TestSecondClientWaits(t *testing.T) {
	needTools(t, "qemu-storage-daemon", "qemu-img")
	dir := t.TempDir()
	p := startQSD(t, dir, newDisk(t, dir, "d.qcow2"))
	c := dialProc(t, testContext(t, 10*time.Second), p)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, p.qmp)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Dial while connected: %v", err)
	}
	t.Logf("second client: %v", err)
	c.Close()
	c2 := dialProc(t, testContext(t, 10*time.Second), p)
	mustExec(t, testContext(t, 5*time.Second), c2, "query-version", nil, nil)
}
