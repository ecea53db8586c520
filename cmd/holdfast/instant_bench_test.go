package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/testutil/tinyguest"
)

// BenchmarkInstantBoot boots the tiny guest (internal/testutil/tinyguest)
// from a local raw image, from an instant-recovery NBD export of its backup,
// and, as root with port 111 free, from the NFS export (QEMU's nfs://
// driver). Each iteration boots once from every source, in that order; every
// boot from the backup gets a fresh session, so the chunk cache starts cold.
// It reports the median boot times (seconds from QEMU's start to the guest's
// HOLDFAST-DONE) and the ratios to the local boot:
//
//	go test ./cmd/holdfast -run '^$' -bench BenchmarkInstantBoot -benchtime 3x
//
// HOLDFAST_BENCH_DISK_MIB sets the guest disk's size (default 64) and
// HOLDFAST_BENCH_CHUNK the repository's chunk size (default: repo init's).
func BenchmarkInstantBoot(b *testing.B) {
	for _, tool := range []string{"qemu-system-x86_64", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not installed", tool)
		}
	}
	g := tinyguest.Build(b)
	dir := b.TempDir()
	h := &ibEnv{b: b, dir: dir, vars: []string{
		"HOLDFAST_TEST_MAIN=1",
		"HOLDFAST_REPOSITORY=" + filepath.Join(dir, "repo"),
		"HOLDFAST_PASSWORD=correct horse",
		"HOLDFAST_STATE_DIR=" + filepath.Join(dir, "state"),
	}}
	initArgs := []string{"repo", "init"}
	if cs := os.Getenv("HOLDFAST_BENCH_CHUNK"); cs != "" {
		initArgs = append(initArgs, "--chunk-size", cs)
	}
	h.ok(initArgs...)
	diskMiB := int64(64)
	if s := os.Getenv("HOLDFAST_BENCH_DISK_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 16 {
			b.Fatalf("HOLDFAST_BENCH_DISK_MIB=%q: want a number ≥ 16", s)
		}
		diskMiB = n
	}
	const marker = "instant-boot-bench"
	disk := filepath.Join(dir, "vm-disk.img")
	tinyguest.MakeDisk(b, disk, diskMiB<<20, marker)
	h.ok("backup", "--name", "tiny", disk)
	nfs := port111Free()
	if !nfs {
		b.Log("NFS boot skipped: needs root and a free 127.0.0.1:111 for the portmapper")
	}

	boot := func(what string, drive string) time.Duration {
		console, took := tinyguest.Boot(b, g, 3*time.Minute, "-drive", drive+",format=raw,if=virtio")
		if !strings.Contains(console, tinyguest.Marker+marker) || !strings.Contains(console, tinyguest.Done) {
			b.Fatalf("boot from %s failed:\n%s", what, console)
		}
		b.Logf("boot from %s: %s", what, took.Round(time.Millisecond))
		return took
	}
	var local, overNBD, overNFS []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Local: a fresh copy of the image, as the backup holds it.
		img := filepath.Join(dir, "local.img")
		ibCopy(b, disk, img)
		local = append(local, boot("the local image", "file="+img))

		addr := ibFreeAddr(b)
		rec := h.start("tiny:latest", "--nbd", addr)
		overNBD = append(overNBD, boot("the NBD export", "file="+rec.Disks[0].NBDURL))
		h.ok("instant-recovery", "stop", rec.ID, "--discard")

		if nfs {
			rec := h.start("tiny:latest", "--nbd", "", "--nfs", "--nfs-ports", "111,0,0")
			overNFS = append(overNFS, boot("the NFS export", "file="+rec.Disks[0].NFSURL))
			h.ok("instant-recovery", "stop", rec.ID, "--discard")
		}
	}
	b.StopTimer()
	l := ibMedian(local)
	b.ReportMetric(l.Seconds(), "local-s")
	b.ReportMetric(ibMedian(overNBD).Seconds(), "nbd-s")
	b.ReportMetric(ibMedian(overNBD).Seconds()/l.Seconds(), "nbd/local")
	if nfs {
		b.ReportMetric(ibMedian(overNFS).Seconds(), "nfs-s")
		b.ReportMetric(ibMedian(overNFS).Seconds()/l.Seconds(), "nfs/local")
	}
	b.Logf("boot times: local %v, NBD %v, NFS %v", local, overNBD, overNFS)
}

// ibEnv runs the holdfast CLI (this test binary with HOLDFAST_TEST_MAIN=1)
// for benchmarks, like env does for tests.
type ibEnv struct {
	b    *testing.B
	dir  string
	vars []string
}

func (h *ibEnv) ok(args ...string) string {
	h.b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), h.vars...)
	cmd.Dir = h.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		h.b.Fatalf("holdfast %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// start runs `instant-recovery start --json ARGS…`; the session is stopped
// when the benchmark ends if it still serves then.
func (h *ibEnv) start(args ...string) instant.Record {
	h.b.Helper()
	out := h.ok(append([]string{"instant-recovery", "start", "--json"}, args...)...)
	var rec instant.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.ID == "" || len(rec.Disks) == 0 {
		h.b.Fatalf("instant-recovery start: %v\n%s", err, out)
	}
	h.b.Cleanup(func() {
		if instant.Alive(rec.PID) {
			cmd := exec.Command(os.Args[0], "instant-recovery", "stop", rec.ID, "--discard")
			cmd.Env = append(os.Environ(), h.vars...)
			_ = cmd.Run()
		}
	})
	return rec
}

func ibFreeAddr(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func ibCopy(b *testing.B, src, dst string) {
	b.Helper()
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(fmt.Errorf("copy %s: %w", dst, err))
	}
}

func ibMedian(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
