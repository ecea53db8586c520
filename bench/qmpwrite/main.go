// Command qmpwrite makes guest-like writes into a running QEMU's disk
// through QMP (HMP qemu-io on the virtio device), for bench/qemu.sh. It
// writes -percent of -size in -block sized writes at random aligned
// offsets and prints how many bytes changed and how many bytes that is
// when rounded out to -chunk sized chunks.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/holdfast-backup/holdfast/internal/qmp"
)

func main() {
	sock := flag.String("qmp", "", "QMP socket of the VM")
	dev := flag.String("device", "/machine/peripheral/vda/virtio-backend", "qdev path of the disk")
	size := flag.Int64("size", 0, "disk size in bytes")
	percent := flag.Float64("percent", 1, "share of the disk to change")
	block := flag.Int64("block", 64<<10, "bytes per write")
	chunk := flag.Int64("chunk", 1<<20, "chunk size for the rounded figure")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if err := run(*sock, *dev, *size, *percent, *block, *chunk, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "qmpwrite:", err)
		os.Exit(1)
	}
}

func run(sock, dev string, size int64, percent float64, block, chunk int64, seed uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := qmp.Dial(ctx, sock)
	if err != nil {
		return err
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(seed, seed))
	n := int64(float64(size) * percent / 100 / float64(block))
	written := map[int64]bool{}
	chunks := map[int64]bool{}
	for int64(len(written)) < n {
		off := rng.Int64N(size/block) * block
		if written[off] {
			continue
		}
		written[off] = true
		for o := off; o < off+block; o += chunk - o%chunk {
			chunks[o/chunk] = true
		}
		cmd := fmt.Sprintf("qemu-io -d %s \"write -P 0x%02x %d %d\"", dev, rng.IntN(255)+1, off, block)
		out, err := c.HumanMonitorCommand(ctx, cmd)
		if err != nil || out != "" {
			return fmt.Errorf("%s: %q %v", cmd, out, err)
		}
	}
	fmt.Printf("{\"writes\": %d, \"changed_bytes\": %d, \"changed_rounded\": %d}\n", n, n*block, int64(len(chunks))*chunk)
	return nil
}
