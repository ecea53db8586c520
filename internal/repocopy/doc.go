// Package repocopy copies restore points from one repository to another,
// chunk by chunk: the backup copy job (off-site copies, 3-2-1).
//
// Copy is written against the store interfaces of internal/repo
// (repo.PointReader and a point list for the source, repo.Sink for the
// target), so it copies between repositories on local disk, on object
// storage and behind repository agents (the data mover's client) alike.
//
// # What a copy is
//
// A copied point keeps the source point's ID, VM, time, notes,
// configuration and disk sizes; its manifest records where it came from
// (copied_from: the source repository's config ID and the point ID, and the
// time of the copy). A point is the same point in every repository that
// holds its ID, so a point the target has already is skipped, and copying
// back (B to A) skips what A had.
//
// The two repositories normally have different keys: a chunk's ID is a
// keyed hash, so the same bytes have another ID at the target, and the
// blobs are sealed with another data key. Each chunk is therefore read and
// opened at the source (authenticated and re-hashed there), hashed with
// the target's hasher, and stored at the target unless it is there already
// (TouchChunk, which also protects it from a concurrent GC). Only chunks
// the target lacks cross the link. When the target's chunk size divides
// the source's, each source chunk is split into target chunks (all-zero
// pieces get no index entry) and the copy's disks have the target's chunk
// size: small objects lose less to a link that drops (an upload cut
// halfway is sent again whole).
//
// Reading a chunk at the source is needed only to learn its target ID.
// Where the target holds another point of the same VM that the source holds
// too (by ID), the two indexes of that reference point pair source IDs with
// target IDs position by position: a chunk of the new point with the same
// source ID at the same position has the reference's target ID, and only a
// presence check is needed. An incremental copy of a point whose parent was
// copied before reads only the changed chunks at the source.
//
// # Order and atomicity
//
// For each point, under a shared lock of the target (a session, through an
// agent): the chunks, then each disk's index (with target IDs), then a
// check on arrival, then the manifest last. A copy that is killed or fails
// leaves no visible point at the target; the chunks it stored stay and the
// next copy finds them present (or GC collects them).
//
// # Verification on arrival
//
// Every chunk stored is authenticated by the target (a repository agent
// opens and re-hashes each uploaded blob). Before committing, every chunk
// of the point's new indexes is checked present at the target, the index
// hash the target confirms must be the one computed here, an index stored
// in a repository on storage is read back and compared, and a sample of the
// chunks sent (Options.VerifySample) is fetched back and opened with the
// target's keys.
//
// # Memory
//
// A copy holds nothing per chunk of the disk it copies: the indexes it
// reads (the source's, the reference point's two) are spilled into
// temporary files through repo.IndexEncoder and read back entry by entry;
// the target index is built in chunk order through a window of entries in
// flight; a chunk repeated within a disk is copied once while its repeats
// lie within a bounded set of recent chunks (further apart it is read
// again and found present at the target). Only loading an index and
// sealing the target's hold one whole index blob at a time.
//
// # Dropped links
//
// Every call to either repository that fails with a transient network
// error (connection reset or refused, broken pipe, unexpected EOF, a
// timeout) is retried with exponential backoff (Options.Retry) without
// restarting the point; every step is idempotent (chunks by content ID,
// indexes by point and disk, the commit by point ID). A copy that gave up
// sends, when run again, only what is still missing.
//
// # Trust
//
// The copy process holds both repositories' keys (both passwords): it
// reads plain chunk bytes from the source and re-seals them for the target.
// The target (or its agent) re-verifies every blob it stores. Scan records,
// holds and locks are not copied.
package repocopy
