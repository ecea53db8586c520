// Package scheduler holds the two schedulers of the backup server: the
// resource scheduler, which hands the tasks of running jobs to proxy and
// repository task slots, and job schedules, which say when a job starts.
//
// # Resource scheduler
//
// A job is split into one Task per VM disk. A task runs when it holds one
// slot on a proxy (the source-side data mover) and one slot on the job's
// repository (the target side); each has a fixed number of slots, by
// default the machine's CPU cores. Workers pull work with Next, which blocks
// until some queued task can run, and end each attempt with Done.
//
// Selection. The queue is ordered by priority (higher first), then by
// submission order (FIFO). Next takes the first task in that order that can
// run now; a task that cannot (unknown repository, repository busy, no proxy
// reaches its source, reaching proxies busy) stays queued and later tasks
// may pass it. Queued reports why each task waits. For a runnable task the
// scheduler walks the task's transports in preference order (default:
// direct, hotadd, nbd) and takes the first transport that some online proxy
// with a free slot offers for the task's source; among those proxies it
// picks the least loaded (used/slots), then the one with more slots, then
// the smallest ID. A less preferred transport is used at once rather than
// waiting for a busy proxy with a better one; list only the transports you
// accept.
//
// Every slot change (Submit, Done, ProxyDown, proxy or repository added)
// re-evaluates the queue for all waiting Next calls. Slot limits are never
// exceeded: slots are taken and given back under one lock.
//
// VM sessions. All disk tasks of one VM in one job share one snapshot. The
// scheduler counts a VM's unfinished tasks (queued or running) from Submit
// on; before the first of them starts it calls VMHooks.Prepare once (the
// other disks of the VM wait for it), and when the last of them ends (Done,
// Cancel, or ProxyDown without requeue) it calls VMHooks.Release once,
// whether the tasks succeeded or not and whether Prepare succeeded or not.
// Submit all disks of a VM in one call: a VM whose tasks all ended before
// more are submitted gets a new session (a new snapshot). Prepare runs in
// the Next call that started the first disk, with that call's context values
// but not its cancellation; Release runs in the call that ended the last
// task. Neither is called with the scheduler's lock held, so hooks may call
// back into the scheduler.
//
// Attempts. Every assignment returned by Next must be ended by exactly one
// Done. ProxyDown (a proxy's heartbeat was lost) ends the attempts running
// on it at once, frees their slots and either requeues the tasks at their
// old place in the queue or ends them with ErrProxyDown; a Done for such a
// lost attempt returns ErrStale and changes nothing. Each ended attempt is
// kept as a Record (proxy, repository, transport, start and end time, error)
// until ForgetJob.
//
// The scheduler starts no goroutines; all methods are safe for concurrent
// use. Time is read only from the injected clock (internal/clock).
//
// # Schedules
//
// ParseSchedule understands three forms:
//
//	0 2 * * MON-FRI      cron: minute hour day-of-month month day-of-week
//	@daily, @hourly, …   cron macros (@yearly @annually @monthly @weekly @daily @midnight @hourly)
//	daily 02:00          also "daily at 02:00": every day at that wall-clock time
//	after nightly-sql    chained: runs when job "nightly-sql" finishes
//
// Cron fields accept *, numbers, names (JAN-DEC, SUN-SAT; 0 and 7 are
// Sunday), lists (1,15), ranges (1-5, MON-FRI; MON-SUN ends on Sunday), steps
// (*/15, 1-30/5, and 5/15 meaning 5-max/15). As in Vixie cron, when both the
// day-of-month and the day-of-week field are restricted a day matches if
// either matches; a field whose text begins with "*" (including "*/2")
// counts as unrestricted for this rule. Expressions that can never fire
// (0 0 30 2 *) are rejected.
//
// Schedules are wall-clock times in their time.Location. Across daylight
// saving changes:
//
//   - a wall time that does not exist (the hour skipped when clocks go
//     forward) fires at the instant of the jump, once, however many
//     scheduled times fell into the gap (02:30 → 03:00 CEST);
//   - a wall time that occurs twice (clocks go back) fires once, at its
//     first occurrence; an hourly schedule therefore has one gap of two
//     hours per year rather than two runs at the same wall time.
//
// Chained schedules never fire by time (Next returns the zero time); the
// caller starts the job when Dependency() finishes. CheckChains rejects
// dependency cycles.
package scheduler
