package orchestrator

import "github.com/holdfast-backup/holdfast/internal/scheduler"

// SlotUsage returns the task slots of every proxy and repository the
// scheduler knows and how many are busy (for the server's metrics).
func (or *Orchestrator) SlotUsage() []scheduler.Usage { return or.sched.Usage() }
