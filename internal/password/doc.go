// Package password finds a repository password in the places a command
// line tool looks for one, in one order (restic's sources, Holdfast's
// names):
//
//  1. the flags: --password-file FILE or --password-command CMD (both
//     together are refused);
//  2. the environment: HOLDFAST_PASSWORD_FILE or HOLDFAST_PASSWORD_COMMAND
//     (both together are refused);
//  3. HOLDFAST_PASSWORD, the password itself;
//  4. nothing: Read returns ErrNoSource and the caller may prompt on a
//     terminal.
//
// A flag wins over every variable. A file's or a command's output loses
// its final line ending (one "\n" or "\r\n"); nothing else is trimmed, so
// a password may begin or end with spaces.
//
// A command is not run through a shell: it is split into words the way a
// POSIX shell splits them (blanks separate words; 'single quotes' keep
// everything; "double quotes" keep everything but \" and \\; a backslash
// outside quotes keeps the next character) and the first word is run
// with the others as arguments. There are no variables, globs, pipes or
// redirections; write sh -c '…' to have them. The command's standard
// input and error are the caller's (a pinentry or gpg prompt works); its
// standard output is the password.
//
// Errors never hold the password nor the command's output: they name
// the source (the flag or the variable) and, for a command, its exit
// status. They wrap ErrUsage when the sources given contradict each other
// or give an empty password, ErrCommand when the command fails.
package password
