// Package logging builds the one kind of logger every holdfast process
// uses (the CLI, the server, the proxy and repository agents, Instant VM
// Recovery): log/slog lines on stderr, each with its time, level and
// message, as text (key=value, the default) or JSON (one object a line,
// for journald or a log shipper).
//
// Level and Format are pflag values, so a bad --log-level or --log-format
// is refused when the flags are parsed.
package logging
