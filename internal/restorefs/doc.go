// Package restorefs presents the disks of a restore point as io.ReaderAt
// over the chunk store, and keeps a running VM's writes apart in a redo
// overlay. Full restores (Disk.Stream), rollbacks (Disk.ReadChunk), instant
// recovery (NBD and NFS exports) and migration all read through it, as
// publish and file-level restore are to: one read path, with one function
// that fetches a chunk (GetChunk, length check, an error naming the point,
// disk, chunk, offset and ID).
//
// # Disk
//
// OpenDisk loads one disk's fixed index; the index is the only per-disk
// structure, so opening a 1 TiB sparse disk costs what its index costs
// (about 40 bytes per non-zero chunk) and nothing sized by the disk.
// ReadAt maps a byte range to chunk numbers; zero chunks (no index entry)
// read as zeros and are never fetched. Data chunks come from a cache:
//
//   - LRU by bytes, bounded by Options.CacheBytes (each cached chunk counts
//     its buffer's capacity, in-flight fetches included). Readers pin the
//     chunks they copy from; pinned chunks are never evicted. When nothing
//     can be evicted a read fetches into a private buffer instead of
//     growing the cache, so the bound holds whatever the load.
//   - Keyed by chunk ID, so identical chunks at several offsets are
//     fetched and kept once.
//   - Concurrent readers of one missing chunk share one fetch
//     (singleflight). A failed fetch is not cached: the next read tries
//     again. A chunk that fails its checks (GetChunk re-hashes it) gives an
//     error naming the point, disk, chunk and offset, wrapping the store's
//     error (repo.ErrCorrupt for damage).
//
// Read-ahead: each Disk remembers the end of its last few read streams; a
// read that starts where one ended (or up to one chunk after it) is
// sequential, and the next Options.ReadAhead data chunks after it are
// queued for a small pool of background workers. Read-ahead never evicts
// a chunk a reader has pinned, is capped so that the prefetched window fits
// in the cache, and is dropped when its queue is full.
//
// Stream: a full restore hands every data chunk, in disk order, to one
// function called by one goroutine, while workers fetch up to 2 × workers
// chunks ahead through the cache (pinned until handed over; the window
// shrinks to fit a small cache). Memory is the cache bound plus nothing
// sized by the disk. StreamOptions opens a Disk for streaming: a
// StreamCacheBytes cache and no read-ahead.
//
// ReadAt has no context: its fetches run under a context that Close
// cancels. ReadAtContext lets a server bound one request. The context given
// to OpenDisk only bounds loading the index.
//
// # Overlay
//
// An Overlay stacks a writable layer on a base io.ReaderAt (usually a
// Disk) so a VM can boot from a backup without writing the repository. Its
// directory holds two files:
//
//	redo.img     sparse file of the disk's size; written blocks at their offsets
//	redo.bitmap  header + one bit per block: set when redo.img holds the block
//
// Bitmap file layout (little endian):
//
//	0  8  magic "HFREDOBM"
//	8  4  version (1)
//	12 4  block size (power of two, 4 KiB – 64 MiB)
//	16 8  disk size in bytes
//	24 8  bitmap length in bytes: ceil(ceil(disk size / block size) / 8)
//	32 4  CRC-32C (Castagnoli) of bytes 0–31 followed by the bitmap
//	36 4  reserved, zero
//	40 …  bitmap: block b is bit b%8 (least significant first) of byte b/8;
//	      bits past the last block are zero
//
// The bitmap is 1 bit per block and lives in memory: 2 MiB for a 1 TiB
// disk with the default 64 KiB blocks. A bitmap whose header does not
// match the overlay being opened (other disk size or block size, damage)
// is refused with an error; it is never reset silently.
//
// Writes: a write covering whole blocks goes straight to redo.img; a
// partial block is first filled from the base (read-modify-write). A
// block's bit is set only after its data is in redo.img. Writers to the
// same block are serialised by striped block locks; readers do not lock
// (reads racing with writes to the same range see old or new data, as on
// a disk). WriteZeroes punches holes in redo.img where it can.
//
// Durability: Flush takes a snapshot of the bitmap, fsyncs redo.img (so
// every block in the snapshot has durable data), then, if any bit changed
// since the last Flush, writes the snapshot to a temporary file, fsyncs it,
// renames it over redo.bitmap and fsyncs the directory. After Flush
// returns, a crash loses nothing written before Flush was called. Writes
// not yet flushed may be lost or torn, as on a disk with a volatile
// write cache. Close flushes.
//
// One process at a time: OpenOverlay takes an exclusive flock on redo.img
// and fails if another holder has it.
package restorefs
