// Package qmp talks to QEMU over its two JSON control protocols:
//
//   - QMP, the QEMU Machine Protocol of qemu-system-* and
//     qemu-storage-daemon (Client): a greeting, capability negotiation,
//     commands answered in order of arrival and matched to callers by the
//     request "id", and asynchronous events (Subscription).
//   - The QEMU guest agent protocol (Agent): newline-delimited JSON over the
//     host end of a virtio-serial port, no greeting, no ids, one command at a
//     time, resynchronised with guest-sync-delimited and its 0xFF sentinel.
//
// Any command can be sent with Client.Execute or Agent.Execute; typed
// helpers cover what the backup needs (block nodes, block jobs,
// transactions, HMP, run state; guest fsfreeze and guest-exec).
//
// A Client is safe for concurrent use: one reader goroutine demultiplexes
// replies by id and fans events out to subscriptions. Events are never lost
// between Subscribe and a command that triggers them: subscribe first, then
// Execute, then wait on the subscription. Errors QEMU reports are *Error
// (match with errors.As on Class); a lost connection fails every pending and
// later call with an error wrapping ErrDisconnected. Timeouts come from the
// ctx of each call.
//
// docs/qmp.md lists the QMP subset Holdfast uses, the fleecing sequence and
// the cleanup order.
package qmp
