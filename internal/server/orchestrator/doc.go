// Package orchestrator runs jobs on the backup server: it turns a session
// of a backup job into one task per VM disk, feeds them to the resource
// scheduler, hands each assignment to the proxy the scheduler chose (the
// proxy long-polls for it over mutual TLS), collects progress and results,
// and commits one restore point per VM.
//
// One point per VM, disks on any proxy. When the scheduler prepares a VM
// (its first disk task starts) the orchestrator opens a shared data mover
// session on the job's repository agent, with the server's own certificate,
// and picks the point ID. Every disk task of the VM attaches to that session
// from whichever proxy runs it, uploads its chunks and its index under the
// point, and reports the disk's manifest entry. When the VM's last disk ends
// the orchestrator commits the manifest (all disks succeeded) or aborts the
// session (any failed: nothing is committed, stored chunks are reused next
// time) and records the point in the configuration database.
//
// Agents. Proxies and repositories come from the agents table; a proxy
// whose last heartbeat (or poll, or report) is older than the agent timeout is
// declared lost: its running attempts go back to the queue and run on
// another proxy, and late reports of the lost attempts are refused.
//
// Schedules. Enabled jobs with a schedule fire when it says (cron, daily,
// or after another job's session ends); a job whose previous session is
// still running is skipped for that firing (and a second `job run` is
// refused: one session per job at a time). A firing missed while the
// server was down runs the job once at start, unless its definition says
// "missed": "skip".
//
// Retention. After a VM's point is committed, the job's GFS policy
// (repo.Policy, as `forget`) forgets the VM's other points it does not
// keep, through the repository agent; held points stay.
//
// Maintenance. A job of kind maintenance is one request to its repository
// agent, which runs gc and verify (a rotating read-data share per run) on
// its own storage (maintenance.go).
//
// Restart. Backup sessions of jobs that were running when the server
// stopped run again when it starts (recoverSessions, resume.go): VMs whose
// point was committed stay done, the other VMs' tasks are queued as their
// next attempts, so reports of the old attempts are stale. Other unfinished
// sessions (restores, mounts, sessions of deleted jobs) are marked failed,
// so the history never shows a session running forever; repository agents
// drop the abandoned mover sessions.
package orchestrator
