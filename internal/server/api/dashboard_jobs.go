package api

import (
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// rpoJob is what the dashboard needs of a job's definition: its explicit
// RPO and the VMs it lists. Parsing a definition that lists hundreds of VMs
// on every poll is most of a dashboard's cost, so jobFacts keeps the parsed
// facts per job until the job changes.
type rpoJob struct {
	updated time.Time // the job's Updated when parsed
	ok      bool      // the definition parsed
	def     jobdef.Definition
}

// jobFacts caches rpoJob by job ID.
type jobFacts struct {
	mu   sync.Mutex
	jobs map[int64]rpoJob
}

// facts returns the parsed definitions of jobs (those whose definition
// does not parse: ok false), reusing what it parsed before for a job not
// updated since, and forgets jobs no longer listed.
func (f *jobFacts) facts(jobs []configdb.Job) []rpoJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jobs == nil {
		f.jobs = map[int64]rpoJob{}
	}
	out := make([]rpoJob, len(jobs))
	seen := make(map[int64]bool, len(jobs))
	for i, j := range jobs {
		seen[j.ID] = true
		c, ok := f.jobs[j.ID]
		if !ok || !c.updated.Equal(j.Updated) {
			def, err := jobdef.Parse(j.Definition)
			// Keep only what the dashboard reads: the RPO and the VM names.
			c = rpoJob{updated: j.Updated, ok: err == nil, def: jobdef.Definition{RPO: def.RPO}}
			for _, vm := range def.VMs {
				c.def.VMs = append(c.def.VMs, jobdef.VM{Name: vm.Name})
			}
			f.jobs[j.ID] = c
		}
		out[i] = c
	}
	for id := range f.jobs {
		if !seen[id] {
			delete(f.jobs, id)
		}
	}
	return out
}
