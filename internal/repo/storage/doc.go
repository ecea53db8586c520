// Package storage is the small interface every repository backend
// implements, plus the local file-system backend.
//
// Names are slash-separated paths relative to the repository root, such as
// "config", "keys/3f2a…" or "chunks/ab/ab12…". Save is atomic: a reader sees
// either the old content or the complete new content, never a partial file
// (local: write to a temporary file in the same directory, rename). Sync
// makes earlier saves durable (local: fsync of each file saved since the
// last Sync, in parallel, then of their directories; syncfs(2) after very
// many files). List never reports temporary files. Each backend
// maps its own "not found" errors to ErrNotExist so callers test with
// errors.Is.
//
// Touch and Rename exist for garbage collection: a backup that reuses a
// stored chunk touches it, and GC only deletes chunks whose modification time
// is older than its cut-off, moving each candidate aside before the final
// check so that a concurrent touch is never lost.
package storage
