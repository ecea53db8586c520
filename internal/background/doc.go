// Package background starts a long-running holdfast process (an instant
// recovery session, a publish session) detached from the command that
// starts it, and waits until the process says it is ready.
//
// Start runs the command in a session of its own (setsid: a signal to the
// starting terminal's process group does not reach it) with its output
// appended to a log file, then polls Ready on the given clock. If the
// process exits first, the error quotes the last lines of its log; if it
// is not ready within the timeout, or ctx ends, the process gets SIGTERM,
// so that it undoes what it has set up (mounts, exports) as it does when
// stopped, and Start returns without waiting for it.
package background
