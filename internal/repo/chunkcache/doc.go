// Package chunkcache is the local metadata cache of an object-storage
// repository: the sorted set of chunk ids the bucket was seen to hold,
// tagged with the gc generation under which they were seen. A backup asks
// it instead of the bucket whether a chunk is stored (no LIST, no HEAD, no
// COPY per chunk); package repo decides when its answers may be trusted
// (docs/object-storage.md, "Cost and caching").
//
// File format (big-endian), one file per repository:
//
//	magic      8 bytes  "HFCHUNK1"
//	generation 16 bytes the repository's gc generation when the ids were seen
//	count      8 bytes  number of ids
//	ids        count × 32 bytes, strictly ascending
//	sum        32 bytes BLAKE3-256 of magic, generation and ids (the
//	                    count is checked by the file's length)
//
// Open checks the whole file (length, order, sum) once and keeps only a
// 65 536-entry fan-out table (256 KiB) in memory; Contains reads the ids
// of one two-byte prefix with one pread, so lookups need bounded memory
// whatever the repository's size. A file that fails any check is
// ErrCorrupt: the caller rebuilds it from the bucket.
package chunkcache
