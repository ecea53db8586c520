// Package fsmap finds the byte ranges of a guest disk that hold no live
// data, so a backup can leave them out: the free blocks of ext2/3/4 and
// xfs file systems and the body of swap partitions. It reads any
// io.ReaderAt (the point-in-time disk a backup reads) through
// internal/guestdisk's volumes and never writes.
//
// What counts as free:
//
//   - ext2/3/4: a block whose bit is clear in its group's block bitmap
//     (located through the superblock and the group descriptors, 32- or
//     64-bit, with flex_bg). A group flagged BLOCK_UNINIT (with
//     uninit_bg or metadata_csum) has no bitmap on disk: every block of
//     it is free except the group's own metadata, as the kernel's
//     ext4_init_block_bitmap computes it. Each group's count of clear
//     bits must equal the descriptor's free-block count. Every group's
//     bitmaps and inode table and every superblock and descriptor copy
//     are kept whatever a bitmap says.
//   - xfs: the extents of each allocation group's free-space B+tree by
//     block number (bnobt, rooted in the AGF), v4 and v5 (CRC-checked)
//     blocks; each AG's sum must equal the AGF's free-block count. Blocks
//     on the AG free list are kept (they belong to the btrees).
//   - swap (Linux swap v1, "SWAPSPACE2"): everything after the first 4 KiB
//     page, which holds the header and signature and is kept so the
//     restored guest still recognises its swap. A hibernation image
//     ("S1SUSPEND") is not swap to this package and is kept. Swap files
//     are looked for at the usual paths only (/swapfile, /swap.img, …).
//   - excluded paths: the data extents (internal/guestfs) of the regular
//     files at or beneath each path, on every ext2/3/4 and xfs volume that
//     has it. A file with several links is kept (another name may lie
//     outside the path), so is a swap file's header page, and every file
//     of an xfs whose refcount B+tree is not empty (reflinked blocks are
//     other files' data too) or an ext4 with shared_blocks.
//
// A file system is only read when it is consistent on disk: ext4 without
// a journal needing recovery, marked valid and without errors; xfs whose
// log recovery would change nothing but the superblock (the records from
// the newest record's tail to the head are an unmount record or the dummy
// superblock transactions a freeze writes to cover the log; little-endian
// logs only). A running guest's file systems are so after a guest-agent
// freeze (fsfreeze); otherwise their free space is kept, and a warning
// says why. File systems in LVM2 linear logical volumes are read through
// the physical volumes' metadata (internal/guestdisk) and their ranges
// mapped back to the disk; a volume group holding any other kind of LV
// (snapshot, thin, RAID, cache), or whose LVs overlap, is kept whole.
// btrfs is not read.
//
// Trust: every byte parsed was written by the guest. Offsets and counts
// are bounds-checked against the volume, B+tree walks are bounded (levels
// strictly descend, at most one visit per block), and a damaged or
// unsupported file system (bigalloc, meta_bg, a checksum or count that
// does not match) means nothing is excluded from that volume, with a
// warning, never a wrong exclusion and never a panic. A guest that lies
// can at most make its own backup leave out its own data: excluded ranges
// are restored as zeros, never as anyone else's bytes. The parsers are
// fuzzed.
package fsmap
