package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// gatedWriter holds every write until released and records the most
// writes in progress at once.
type gatedWriter struct {
	mu        sync.Mutex
	started   chan int64
	release   chan struct{}
	inFlight  int
	most      int
	written   map[int64][]byte
	failAt    int64
	failError error
}

func (g *gatedWriter) WriteAt(p []byte, off int64) (int, error) {
	g.mu.Lock()
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	g.mu.Unlock()
	g.started <- off
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	if off == g.failAt && g.failError != nil {
		return 0, g.failError
	}
	g.written[off] = bytes.Clone(p)
	return len(p), nil
}

// TestPipelinedWriterWindow: WriteAt returns while the write is still in
// progress, up to window writes run at once, each writes a copy of the
// caller's bytes (the caller reuses its buffer at once), and Wait returns
// when all are done.
func TestPipelinedWriterWindow(t *testing.T) {
	g := &gatedWriter{started: make(chan int64, 16), release: make(chan struct{}), written: map[int64][]byte{}, failAt: -1}
	p := newPipelinedWriter(g, 3)
	buf := make([]byte, 4)
	for i := range 3 {
		buf[0] = byte(i + 1)
		if n, err := p.WriteAt(buf, int64(i)*4); n != 4 || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	for range 3 {
		<-g.started // all three in progress at once, none finished
	}
	fourth := make(chan error)
	go func() {
		buf[0] = 4
		_, err := p.WriteAt(buf, 12)
		fourth <- err
	}()
	select {
	case err := <-fourth:
		t.Fatalf("a fourth write was taken with three in flight and a window of 3 (%v)", err)
	case g.release <- struct{}{}: // one finishes: the fourth may start
	}
	if err := <-fourth; err != nil {
		t.Fatal(err)
	}
	<-g.started
	done := make(chan error)
	go func() { done <- p.Wait() }()
	for range 3 {
		g.release <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g.most != 3 {
		t.Errorf("at most %d writes in flight, want 3", g.most)
	}
	for i := range 4 {
		if got := g.written[int64(i)*4]; len(got) != 4 || got[0] != byte(i+1) {
			t.Errorf("write %d wrote %v, want a copy of the bytes given", i, got)
		}
	}
}

// TestPipelinedWriterError: a failed write is reported by a later WriteAt
// (which then writes nothing) and by Wait.
func TestPipelinedWriterError(t *testing.T) {
	bad := errors.New("disk full")
	g := &gatedWriter{started: make(chan int64, 16), release: make(chan struct{}, 16), written: map[int64][]byte{}, failAt: 0, failError: bad}
	p := newPipelinedWriter(g, 1)
	g.release <- struct{}{}
	if _, err := p.WriteAt([]byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	<-g.started
	if _, err := p.WriteAt([]byte{2}, 1); !errors.Is(err, bad) { // waits for the slot of the failed write
		t.Fatalf("write after a failed one: %v, want %v", err, bad)
	}
	if err := p.Wait(); !errors.Is(err, bad) {
		t.Fatalf("Wait: %v, want %v", err, bad)
	}
	if len(g.written) != 0 {
		t.Errorf("written %v after the failure", g.written)
	}
}

// TestQcow2TargetPipelinedWrites: a full restore to a qcow2 image writes
// through the pipelined writer, with write-back hints on the image file
// (its whole length: qemu-nbd's file offsets are not the disk's), and the
// image holds the disk; an aborted restore leaves nothing behind.
func TestQcow2TargetPipelinedWrites(t *testing.T) {
	needQemu(t)
	r, want, ix := qcowDisk(t)
	dir := t.TempDir()
	ctx := context.Background()
	img := filepath.Join(dir, "disk.qcow2")
	tg, err := OpenTarget(ctx, img, ix.DiskSize, TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wb, ok := tg.RestoreTarget.W.(*writeback)
	if !ok || wb.w != io.WriterAt(tg.pipe) || tg.file == nil {
		t.Fatalf("qcow2 target writes through %T, want write-back hints over the pipelined writer", tg.RestoreTarget.W)
	}
	if err := wb.kick(cs, cs); err != nil { // the image file's handle takes the hint
		t.Fatalf("write-back hint on the image: %v", err)
	}
	if _, err := RestoreDisk(ctx, streamDisk(t, r, ix), tg.RestoreTarget, Options{Workers: 2}); err != nil {
		tg.Abort()
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(qcowContent(t, img), want) {
		t.Fatal("restored qcow2 differs from the disk")
	}

	aborted := filepath.Join(dir, "aborted.qcow2")
	tg, err = OpenTarget(ctx, aborted, ix.DiskSize, TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.RestoreTarget.W.WriteAt(want[:cs], 0); err != nil {
		t.Fatal(err)
	}
	tg.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("files left after an abort: %v", ents)
	}
}
