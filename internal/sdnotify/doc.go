// Package sdnotify tells systemd about a service's state (sd_notify(3))
// without libsystemd: one datagram to the unix socket named by
// $NOTIFY_SOCKET, which systemd sets for Type=notify units.
//
// A path starting with '@' names a socket in the abstract namespace (the
// '@' stands for a leading NUL byte). Without $NOTIFY_SOCKET (not run by
// systemd, or not Type=notify) Notify does nothing and reports false.
//
// holdfast sends READY=1 once its listeners are up and serving, and
// STOPPING=1 when it begins to shut down.
package sdnotify
