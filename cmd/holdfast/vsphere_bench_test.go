package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
)

// timedBackup runs `backup --json` and returns its result, wall time and
// peak resident memory (KiB).
func (v *vsphereEnv) timedBackup(name string) (backupJSON, time.Duration, int64) {
	v.t.Helper()
	start := clock.Real().Now()
	cmd := v.command(context.Background(), append([]string{"backup", "--json", "--name", name}, v.source()...)...)
	out, err := cmd.Output()
	took := clock.Real().Since(start)
	if err != nil {
		v.t.Fatalf("backup: %v", err)
	}
	var b backupJSON
	if err := json.Unmarshal(out, &b); err != nil {
		v.t.Fatal(err)
	}
	return b, took, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}

// benchVSphereEnv is a simulator VM with a disk of size holding 1 GiB in
// 1024 pseudo-random MiB spread evenly over it; chunks of 1 MiB.
func benchVSphereEnv(t *testing.T, size int64) *vsphereEnv {
	t.Helper()
	e := newEnv(t)
	e.init("--chunk-size", "1MiB")
	sim := vcsim.Start(t, nil)
	cbt := sim.CBT()
	cbt.PageSize = 64 << 30
	sim.SetDiskCapacity(t, simVM, 0, size)
	e.vars = append(e.vars, envVSpherePassword+"="+vcsim.Password)
	v := &vsphereEnv{env: e, sim: sim, cbt: cbt}
	step := size / 1024 / (1 << 20) * (1 << 20)
	for i := int64(0); i < 1024; i++ {
		sim.WriteDisk(t, simVM, 0, i*step, pseudoRandom(uint64(i), 1<<20))
	}
	return v
}

// TestBenchVSphere measures a full and a 1 %-changed incremental backup
// of a 4 GiB disk, and the peak memory of full backups of a 4 GiB and a
// 4 TiB disk holding the same 1 GiB. It runs only with HOLDFAST_BENCH=1
// (bench/vsphere.sh) and prints Markdown tables.
func TestBenchVSphere(t *testing.T) {
	if os.Getenv("HOLDFAST_BENCH") != "1" {
		t.Skip("benchmark: set HOLDFAST_BENCH=1 (bench/vsphere.sh)")
	}
	v := benchVSphereEnv(t, 4<<30)
	full, fullTook, fullRSS := v.timedBackup("bench")
	// 1 % of the disk: 64 KiB guest writes at random aligned offsets.
	rng := rand.New(rand.NewPCG(7, 7))
	const block = 64 << 10
	n := int((4 << 30) / 100 / block)
	chunks := map[int64]bool{}
	for i := 0; i < n; i++ {
		off := rng.Int64N((4<<30)/block) * block
		v.sim.WriteDisk(t, simVM, 0, off, pseudoRandom(uint64(1000+i), block))
		chunks[off/(1<<20)] = true
	}
	incr, incrTook, _ := v.timedBackup("bench")
	rounded := int64(len(chunks)) << 20
	d := incr.Disks[0]
	fmt.Printf("\n### vSphere source: full vs incremental through the simulator (4 GiB disk, 1 GiB written, then 1 %% changed in 64K writes at random aligned offsets, 1 MiB chunks)\n\n")
	fmt.Printf("| backup | time | bytes read | changed, rounded to chunks | read / rounded | cbt |\n| --- | ---: | ---: | ---: | ---: | --- |\n")
	fmt.Printf("| full | %.1f s | %d MiB | | | %s |\n", fullTook.Seconds(), full.Disks[0].BytesRead>>20, full.Disks[0].CBT)
	fmt.Printf("| incremental | %.1f s | %.1f MiB | %.1f MiB (%d chunks) | %.2f | %s |\n", incrTook.Seconds(), float64(d.BytesRead)/(1<<20),
		float64(rounded)/(1<<20), len(chunks), float64(d.BytesRead)/float64(rounded), d.CBT)

	big := benchVSphereEnv(t, 4<<40)
	bigB, bigTook, bigRSS := big.timedBackup("bench")
	fmt.Printf("\n### vSphere source: peak memory of a full backup, same 1 GiB on a 4 GiB and a 4 TiB thin disk\n\n")
	fmt.Printf("| disk | time | bytes read | peak RSS |\n| --- | ---: | ---: | ---: |\n")
	rows := []struct {
		size string
		took time.Duration
		read int64
		rss  int64
	}{{"4 GiB", fullTook, full.Disks[0].BytesRead, fullRSS}, {"4 TiB", bigTook, bigB.Disks[0].BytesRead, bigRSS}}
	for _, r := range rows {
		fmt.Printf("| %s | %.1f s | %d MiB | %d MiB |\n", r.size, r.took.Seconds(), r.read>>20, r.rss>>10)
	}
}
