package qmp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFleecingMisuse records how QEMU refuses the mistakes the backup
// source must avoid; the messages are listed in docs/qmp.md.
func TestFleecingMisuse(t *testing.T) {
	needTools(t, "qemu-storage-daemon", "qemu-img")
	dir := t.TempDir()
	disk := newDisk(t, dir, "d.qcow2")
	old := filepath.Join(dir, "old.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", old, "64M")
	p := startQSD(t, dir, disk)
	ctx := testContext(t, 20*time.Second)
	c := dialProc(t, ctx, p)

	refuse := func(what, cmd string, args any) {
		t.Helper()
		err := c.Execute(ctx, cmd, args, nil)
		var qerr *Error
		if !errors.As(err, &qerr) {
			t.Fatalf("%s: %v, want a QMP error", what, err)
		}
		t.Logf("%s: %v", what, err)
	}
	mustExec(t, ctx, c, "blockdev-add", map[string]any{"driver": "qcow2", "node-name": "old",
		"file": map[string]any{"driver": "file", "filename": old}}, nil)
	refuse("persistent bitmap on compat=0.10", "block-dirty-bitmap-add",
		BitmapAdd{Node: "old", Name: "bm0", Persistent: true})

	mustExec(t, ctx, c, "block-dirty-bitmap-add", BitmapAdd{Node: "disk0", Name: "bm0", Persistent: true}, nil)
	fleece := filepath.Join(dir, "fleece.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", fleece, "64M")
	mustExec(t, ctx, c, "blockdev-add", map[string]any{"driver": "qcow2", "node-name": "fleece",
		"discard": "unmap", "backing": "disk0", "file": map[string]any{"driver": "file", "filename": fleece}}, nil)

	refuse("transaction with a bad target", "transaction", map[string]any{"actions": []Action{
		AddBitmap(BitmapAdd{Node: "disk0", Name: "bm0-frozen", Disabled: true}),
		Backup(BlockdevBackup{JobID: "fleecejob", Device: "disk0", Target: "nosuch", Sync: "none"}),
	}})
	if nodes, _ := c.QueryNamedBlockNodes(ctx, true); strings.Contains(names(nodes), "bm0-frozen") {
		t.Error("a failed transaction left bm0-frozen behind")
	}
	err := c.Transaction(ctx, []Action{
		AddBitmap(BitmapAdd{Node: "disk0", Name: "bm0-frozen", Disabled: true}),
		MergeBitmaps(BitmapMerge{Node: "disk0", Target: "bm0-frozen", Bitmaps: []string{"bm0"}}),
		ClearBitmap("disk0", "bm0"),
		Backup(BlockdevBackup{JobID: "fleecejob", Device: "disk0", Target: "fleece", Sync: "none"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, ctx, c, "nbd-server-start", map[string]any{"addr": map[string]any{
		"type": "unix", "data": map[string]any{"path": filepath.Join(dir, "nbd.sock")}}}, nil)
	refuse("second nbd-server-start", "nbd-server-start", map[string]any{"addr": map[string]any{
		"type": "unix", "data": map[string]any{"path": filepath.Join(dir, "nbd2.sock")}}})
	refuse("read-only export with an enabled bitmap", "block-export-add", map[string]any{
		"type": "nbd", "id": "exp1", "node-name": "fleece", "name": "x", "bitmaps": []string{"bm0"}})
	mustExec(t, ctx, c, "block-export-add", map[string]any{"type": "nbd", "id": "exp0",
		"node-name": "fleece", "name": "snap", "bitmaps": []string{"bm0-frozen"}}, nil)
	refuse("remove an exported bitmap", "block-dirty-bitmap-remove", Bitmap{"disk0", "bm0-frozen"})
	refuse("blockdev-del of an exported node", "blockdev-del", map[string]any{"node-name": "fleece"})
	refuse("blockdev-del of the node under a running job", "blockdev-del", map[string]any{"node-name": "disk0"})

	exportDelWithClient(t, refuse, filepath.Join(dir, "nbd.sock"))
	refuse("merge an exported bitmap back", "block-dirty-bitmap-merge",
		BitmapMerge{Node: "disk0", Target: "bm0", Bitmaps: []string{"bm0-frozen"}})
	teardown(t, ctx, c, true)
}

// exportDelWithClient shows that block-export-del refuses while an NBD
// client (qemu-io reading commands from a pipe, connected once it answered
// a read) is connected.
func exportDelWithClient(t *testing.T, refuse func(what, cmd string, args any), sock string) {
	t.Helper()
	client := exec.Command("qemu-io", "-r", "-f", "raw", "nbd+unix:///snap?socket="+sock)
	stdin, _ := client.StdinPipe()
	stdout, _ := client.StdoutPipe()
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = client.Process.Kill(); _ = client.Wait() }()
	_, _ = io.WriteString(stdin, "read 0 512\n")
	if line, err := bufio.NewReader(stdout).ReadString('\n'); !strings.Contains(line, "read 512/512") {
		t.Fatalf("qemu-io over NBD: %q, %v", line, err)
	}
	refuse("block-export-del with a client connected", "block-export-del", map[string]any{"id": "exp0"})
	stdin.Close() // qemu-io quits at end of input and disconnects
	_, _ = io.Copy(io.Discard, stdout)
	if err := client.Wait(); err != nil {
		t.Fatal(err)
	}
}

func names(nodes []BlockNode) string {
	var b strings.Builder
	for _, n := range nodes {
		b.WriteString(n.NodeName + " ")
		for _, bm := range n.DirtyBitmaps {
			b.WriteString(bm.Name + " ")
		}
	}
	return b.String()
}

// TestConnectionLoss kills QEMU while a command is pending: the call fails
// promptly with ErrDisconnected, as do later calls and subscriptions. The
// persistent bitmap loaded by the killed process comes back inconsistent.
func TestConnectionLoss(t *testing.T) {
	needTools(t, "qemu-storage-daemon", "qemu-img")
	dir := t.TempDir()
	disk := newDisk(t, dir, "d.qcow2")
	ctx := testContext(t, 20*time.Second)
	storeBitmap(t, ctx, filepath.Join(dir, "first"), disk)

	p := startQSD(t, dir, disk)
	c := dialProc(t, ctx, p)
	sub := c.Subscribe()
	defer sub.Close()

	// A stopped QEMU leaves the command pending; then it dies.
	_ = p.cmd.Process.Signal(syscall.SIGSTOP)
	result := make(chan error, 1)
	go func() { result <- c.Execute(ctx, "query-version", nil, nil) }()
	select {
	case err := <-result:
		t.Fatalf("Execute on a stopped QEMU returned %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	_ = p.cmd.Process.Kill()
	select {
	case err := <-result:
		if !errors.Is(err, ErrDisconnected) {
			t.Fatalf("pending Execute: %v, want ErrDisconnected", err)
		}
		t.Logf("pending Execute: %v", err)
	case <-time.After(3 * time.Second):
		t.Fatal("pending Execute still blocked 3 s after QEMU was killed")
	}
	if err := c.Execute(ctx, "query-version", nil, nil); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Execute after the loss: %v", err)
	}
	if _, err := sub.Next(ctx); !errors.Is(err, ErrDisconnected) {
		t.Errorf("subscription after the loss: %v", err)
	}
	<-p.exited
	checkBitmapAfterCrash(t, dir, disk)
}

// storeBitmap adds the persistent bitmap bm0 to disk and quits cleanly: a
// persistent bitmap reaches the image file only when QEMU closes it.
func storeBitmap(t *testing.T, ctx context.Context, dir, disk string) {
	t.Helper()
	mkdir(t, dir)
	p := startQSD(t, dir, disk)
	c := dialProc(t, ctx, p)
	mustExec(t, ctx, c, "block-dirty-bitmap-add", BitmapAdd{Node: "disk0", Name: "bm0", Persistent: true}, nil)
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

func checkBitmapAfterCrash(t *testing.T, dir, disk string) {
	t.Helper()
	info := run(t, "qemu-img", "info", "--output=json", disk)
	if !strings.Contains(info, `"in-use"`) {
		t.Errorf("bitmap of a killed QEMU not flagged in-use:\n%s", info)
	}
	dir2 := filepath.Join(dir, "again")
	mkdir(t, dir2)
	p := startQSD(t, dir2, disk)
	ctx := testContext(t, 10*time.Second)
	c := dialProc(t, ctx, p)
	bm := bitmap(t, ctx, c, "bm0")
	if !bm.Inconsistent {
		t.Errorf("bm0 after a crash: %+v, want inconsistent", bm)
	}
	err := c.Execute(ctx, "block-dirty-bitmap-add", BitmapAdd{Node: "disk0", Name: "x", Disabled: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Execute(ctx, "block-dirty-bitmap-merge", BitmapMerge{Node: "disk0", Target: "x", Bitmaps: []string{"bm0"}}, nil)
	t.Logf("merge an inconsistent bitmap: %v", err)
	if err == nil {
		t.Error("merging an inconsistent bitmap succeeded")
	}
	mustExec(t, ctx, c, "block-dirty-bitmap-remove", Bitmap{"disk0", "bm0"}, nil)
}
