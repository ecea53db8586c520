// Package textsafe makes outside bytes (guest file names, tools' messages
// about guest volumes, engine output) safe to print on a terminal or in a
// log line: Escape keeps printable UTF-8 and writes anything else as a Go
// escape, so a name cannot move the cursor or forge another line.
package textsafe
