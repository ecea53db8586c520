// Package guestfs reads a guest's filesystem (ext2/3/4, xfs) from the bytes
// of one volume — an io.ReaderAt such as a restore point's disk through
// restorefs and guestdisk.Volume.Section — as a read-only file tree, in Go,
// without root, a loop device or a mount.
//
// Open(r, size, content) gives an *FS with Lstat, ReadDir, Readlink, Open
// (an io.ReaderAt/io.ReadSeeker of a file's bytes) and Extents: a regular
// file's data extents, each a byte range of the file and where it lies
// within the volume. Holes and unwritten (preallocated) extents are absent
// from the list and read as zeros, which is how a restore keeps sparse files
// sparse and how a backup can leave excluded files out. A file whose bytes
// live in its inode (ext4 inline data) has no extents; its bytes are read
// through Open as any other.
//
// Paths are slash-separated and relative to the filesystem's root ("/" or
// "" is the root). Symbolic links in the middle of a path are followed
// within the guest's tree (an absolute target starts at the guest's root,
// 40 links at most); the last element is never followed (Lstat semantics).
// Walk visits a tree by inode numbers, each directory once.
//
// Readers, by what they read:
//
//	ext4   superblock, 32/64-byte group descriptors, inodes of any size;
//	       extent trees (depth ≤ 5) and ext2/3 block maps; linear and
//	       htree directories (an htree's index blocks hold no live
//	       entries, so every block is read as a linear one); inline data
//	       (i_block and the system.data attribute); fast and slow
//	       symlinks; 64-bit time fields and 32-bit owners. meta_bg and
//	       encrypted inodes are refused. The journal is not replayed
//	       (as mount -o noload).
//	xfs    v4 and v5 superblocks; inodes v2 and v3 (bigtime, nrext64);
//	       data forks in local, extents and btree format; shortform,
//	       block, leaf and node directories (every data block below the
//	       leaf offset is read); local and remote symlinks. Realtime
//	       files are refused. The log is not replayed (norecovery).
//
// Every byte is guest-written and hostile. Reads are bounded: a
// directory's entries, an extent tree's nodes and depth, a symlink's length
// and a path's link count all have limits; directories are walked by inode
// number so a cycle ends; sizes never allocate by themselves (Open reads
// into the caller's buffer). A damaged structure is an error wrapping
// ErrCorrupt and naming the inode; FS methods add the path; callers add the
// volume. No recover() is used: the readers check bounds before slicing,
// and fuzz tests (damaged real images as seeds) keep it so.
//
// Shared blocks. Files may share data blocks (xfs reflinks), so the
// readers do not refuse extents of different files that name the same
// blocks: bounding what is written from them is the caller's (guestfiles
// restores at most 4 times the volume unless told otherwise). Within one
// file, the data left after clipping at its size may not add up to more
// than the volume: a file that would must name some blocks several times
// over, which is damage, and the file is refused (ErrCorrupt naming the
// inode). An ext2/3 block map, which never shares, may not name one
// indirect block twice nor more data blocks than the volume holds, and is
// walked only up to the file's size (at most ceil(size/blocksize) data
// pointers): so the indirect blocks read for one file are distinct blocks
// of the volume, never one small block named at every slot of every level.
package guestfs
