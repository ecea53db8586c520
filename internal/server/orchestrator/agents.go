package orchestrator

import (
	"context"
	"strconv"

	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// syncAgents brings the scheduler's proxies and repositories in line with
// the agents table: a proxy silent for longer than the agent timeout is
// declared lost and its attempts go back to the queue.
func (or *Orchestrator) syncAgents(ctx context.Context) error {
	agents, err := or.store.ListAgents(ctx, "")
	if err != nil {
		return err
	}
	now := or.now()
	or.mu.Lock()
	sources := or.liveSourcesLocked()
	or.mu.Unlock()
	for _, a := range agents {
		switch a.Role {
		case configdb.AgentRepository:
			if err := or.sched.AddRepository(scheduler.Repository{ID: a.Name, Slots: a.Slots}); err != nil {
				or.log.Warn("add repository", "repository", a.Name, "err", err)
			}
		case configdb.AgentProxy:
			alive := !a.LastHeartbeat.IsZero() && now.Sub(a.LastHeartbeat) < or.o.AgentTimeout
			or.mu.Lock()
			was := or.online[a.Name]
			or.mu.Unlock()
			switch {
			case alive:
				// Online before the scheduler may assign to it: the
				// dispatcher drops assignments to proxies not online.
				or.mu.Lock()
				or.online[a.Name] = true
				or.mu.Unlock()
				caps := parseCaps(a.Capabilities)
				reach := caps.reachMap(sources)
				pinReach(reach, a.Name, caps, sources)
				if err := or.sched.AddProxy(scheduler.Proxy{ID: a.Name, Slots: a.Slots, Reach: reach}); err != nil {
					or.log.Warn("add proxy", "proxy", a.Name, "err", err)
					continue
				}
				if !was {
					or.log.Info("proxy online", "proxy", a.Name, "slots", a.Slots)
				}
			case was:
				or.proxyLost(ctx, a.Name)
			}
		}
	}
	return nil
}

// proxyLost moves the attempts of a silent proxy back to the queue.
func (or *Orchestrator) proxyLost(ctx context.Context, name string) {
	ids, err := or.sched.ProxyDown(name, true)
	if err != nil {
		or.log.Warn("proxy down", "proxy", name, "err", err)
	}
	or.log.Warn("proxy lost: no heartbeat; its tasks go back to the queue", "proxy", name,
		"timeout", or.o.AgentTimeout, "tasks", len(ids))
	var rows []configdb.Task
	or.mu.Lock()
	or.online[name] = false
	delete(or.mail, name)
	for _, id := range ids {
		n, _ := strconv.ParseInt(id, 10, 64)
		tr := or.tasks[n]
		if tr == nil || tr.assign == nil || tr.assign.Proxy != name {
			continue // already moved on (a new attempt may be dispatched by now)
		}
		tr.assign = nil
		row := tr.row
		row.State = configdb.StateQueued
		row.Error = "proxy " + name + " lost during attempt " + strconv.Itoa(tr.attempt) + "; queued again"
		tr.row = row
		rows = append(rows, row)
	}
	or.mu.Unlock()
	for _, row := range rows {
		or.saveTask(ctx, row)
	}
}

// touchProxy records that the proxy is alive (polls and reports count as
// heartbeats).
func (or *Orchestrator) touchProxy(ctx context.Context, name string) {
	if err := or.store.Heartbeat(context.WithoutCancel(ctx), configdb.AgentProxy, name); err != nil {
		or.log.Debug("proxy heartbeat", "proxy", name, "err", err)
	}
}
