package consoleapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// estate is the size of the seeded estate.
type estate struct {
	jobs, vmsPerJob, pointsPerVM, running, tasksPerRun int
	proxies, repositories                              int
}

var console = estate{jobs: 20, vmsPerJob: 50, pointsPerVM: 10, running: 10, tasksPerRun: 10, proxies: 10, repositories: 3}

// seed fills store as e says, on clk (set to now when it returns): each
// job ran once a day for pointsPerVM days (a point per VM and day; every
// 20th VM missed the last two days, so it is outside its RPO), and
// `running` sessions of tasksPerRun tasks run now.
func seed(t testing.TB, store *configdb.Store, clk *clock.Fake, e estate) {
	ctx := context.Background()
	now := clk.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range e.proxies {
		_, err := store.UpsertAgent(ctx, configdb.Agent{Role: "proxy", Name: fmt.Sprintf("proxy%02d", i), Slots: 4,
			Capabilities: json.RawMessage(`{"transports":["nbd","file"]}`)})
		must(err)
		must(store.Heartbeat(ctx, "proxy", fmt.Sprintf("proxy%02d", i)))
	}
	for i := range e.repositories {
		name := fmt.Sprintf("repo%d", i)
		caps := fmt.Sprintf(`{"storage":{"filesystem_size_bytes":%d,"filesystem_free_bytes":%d}}`, int64(10)<<40, int64(4+i)<<40)
		_, err := store.UpsertAgent(ctx, configdb.Agent{Role: "repository", Name: name, Slots: 8, Address: "127.0.0.1:7001",
			Capabilities: json.RawMessage(caps)})
		must(err)
		must(store.Heartbeat(ctx, "repository", name))
		for d := 7; d >= 0; d-- {
			clk.Set(now.Add(-time.Duration(d) * 24 * time.Hour))
			must(store.RecordRepositorySample(ctx, name, configdb.StorageStatus{SizeBytes: 10 << 40, FreeBytes: int64(4+i)<<40 + int64(d)<<35}))
		}
		clk.Set(now)
	}
	for j := range e.jobs {
		job := fmt.Sprintf("job%02d", j)
		vms := make([]string, e.vmsPerJob)
		for v := range vms {
			vms[v] = fmt.Sprintf(`{"name":"vm%04d","disks":["/vm/vm%04d.img"]}`, j*e.vmsPerJob+v, j*e.vmsPerJob+v)
		}
		def := fmt.Sprintf(`{"repository":"repo%d","vms":[%s],"retention":{"keep_daily":14}}`, j%e.repositories, strings.Join(vms, ","))
		_, err := store.CreateJob(ctx, configdb.Job{Name: job, Schedule: fmt.Sprintf("daily %02d:00", j%6), Definition: json.RawMessage(def), Enabled: true})
		must(err)
		for d := e.pointsPerVM; d >= 1; d-- {
			at := now.Add(-time.Duration(d)*24*time.Hour + time.Duration(j)*time.Minute)
			clk.Set(at)
			se, err := store.CreateSession(ctx, job, "backup")
			must(err)
			for v := range e.vmsPerJob {
				vm := j*e.vmsPerJob + v
				if vm%20 == 0 && d <= 2 {
					continue
				}
				_, err := store.RecordPoint(ctx, configdb.Point{ID: fmt.Sprintf("%s-%04d-%02d", job, vm, d), Repository: fmt.Sprintf("repo%d", j%e.repositories),
					VM: fmt.Sprintf("vm%04d", vm), JobName: job, SessionID: se.ID, Created: at,
					Disks: json.RawMessage(`[{"name":"disk0","size":10737418240}]`), BytesTotal: 10 << 30, BytesStored: 200 << 20})
				must(err)
			}
			clk.Set(at.Add(40 * time.Minute))
			state := configdb.StateSuccess
			if (j+d)%7 == 0 {
				state = configdb.StateWarning
			}
			_, err = store.UpdateSession(ctx, se.ID, state, json.RawMessage(`{"vms":[]}`))
			must(err)
		}
	}
	for r := range e.running {
		clk.Set(now.Add(-time.Duration(r+1) * time.Minute))
		se, err := store.CreateSession(ctx, fmt.Sprintf("job%02d", r%e.jobs), "backup")
		must(err)
		for k := range e.tasksPerRun {
			tk, err := store.CreateTask(ctx, configdb.Task{SessionID: se.ID, VM: fmt.Sprintf("vm%04d", r*e.tasksPerRun+k), Disk: "/vm/disk.img",
				Repository: "repo0", BytesTotal: 10 << 30})
			must(err)
			tk.State, tk.Proxy, tk.Transport, tk.BytesDone, tk.BytesRead = configdb.StateRunning, fmt.Sprintf("proxy%02d", k%e.proxies), "nbd", int64(k)<<28, int64(k)<<27
			_, err = store.UpdateTask(ctx, tk)
			must(err)
		}
	}
	clk.Set(now)
}
