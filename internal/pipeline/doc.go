// Package pipeline moves disk data between sources and a chunk store.
//
// Backup: source.Disk → plan (allocated extents, optional changed extents
// from CBT) → read → zero-skip → hash (keyed BLAKE3) → dedup (by content ID
// over the whole store, which includes the previous point; identical chunks
// in flight at once are stored once) → compress + encrypt → store.
// A fixed number of workers read, hash and store chunks in parallel; memory
// is bounded by workers × chunk size, whatever the disk size. Chunks outside
// the allocated extents are never read; with a changed-extent feed, chunks
// outside the changed extents are taken from the previous point's index
// without reading them.
//
// Restore: a restorefs.Disk (the one read path) streams the point's data
// chunks — parallel fetch (load, authenticate, decompress, re-hash) ahead of
// one writer — and the writer writes them in disk order. Zero chunks are left as holes in files (or written as
// zeros on block devices). A chunk that fails a check stops the restore with
// an error naming it; wrong data is never written.
//
// The pipeline talks to storage through the small repo.ChunkStore and
// repo.Sink interfaces, so the same code runs against a local
// repository or, in the distributed mode, a remote repository agent.
package pipeline
