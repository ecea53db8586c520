// Package monitor is the backup server's Prometheus metrics beyond the
// API's own request metrics: what an operator alerts on.
//
// Two kinds of collector go into the server's registry (never the global
// default one):
//
//   - Events (a configdb.Observer) counts and times sessions and tasks as
//     they end, and adds up the bytes tasks read, sent and stored. These
//     start from zero when the server starts, as Prometheus counters do.
//   - State reads the server's state when it is scraped: each job's last
//     result and last success, each VM's newest restore point, the queued
//     and running sessions, the agents (up, last heartbeat, slots and busy
//     slots) and the file system size and free space the repository agents
//     report in their heartbeats.
//
// Metric names follow the Prometheus conventions: the holdfast_ prefix,
// base units (_seconds, _bytes), _total for counters, _timestamp_seconds
// for Unix times. docs/monitoring.md lists them with example alerts.
package monitor
