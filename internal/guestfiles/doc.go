// Package guestfiles is file-level restore: the guest files of a restore
// point's disks, read in Go through guestdisk (partition tables) and
// guestfs (ext4, xfs), without root, a loop device or a mount.
//
// A Tree holds every volume of every disk of a point, named as
// "disk<N>-p<M>" (partition M of disk N) or "disk<N>" (a disk without a
// partition table); volumes whose filesystem is not read (swap, LVM
// physical volumes, unknown content, damage) are listed with the reason.
// Addresses are POINT[:DISK[:PART]] on the command line: without DISK a
// point with one readable filesystem is used directly, and one with several
// shows its volumes as top-level directories.
//
// Restore writes guest files beneath a destination directory and never
// anywhere else: every directory it writes into is opened with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS) from
// the destination, and files are created with O_CREAT|O_EXCL|O_NOFOLLOW
// relative to that handle, so neither a guest symlink nor one planted in
// the destination leads out. Guest names are hostile: a name that is
// empty, ".", "..", holds "/" or NUL, or is longer than 255 bytes is
// skipped with a warning. It keeps file contents (only the data extents are
// written, then the file is truncated to its size: sparse files stay
// sparse), permissions with the sticky bit (setuid/setgid only with
// SetID: else dropped, with one warning), owners (when run as root;
// otherwise skipped with one note), access and modification times,
// symlinks (their targets verbatim, never followed), hard links (a second
// name of an inode already restored in the same run becomes a link), and
// FIFOs (device nodes only as root with SetID). An existing file is never replaced
// without Force; an existing directory is merged into. A damaged entry
// (an inode or directory that does not read) is skipped with a warning and
// the rest restored; Restore then ends with an error wrapping
// guestfs.ErrCorrupt.
//
// Files may share data blocks (reflinks), and a hostile image can point
// every file at the same blocks so that a small image writes terabytes:
// the data one Restore writes (the data extents of the files it restores,
// counted once per inode: a hard link writes nothing) stops at
// SharedFactor (4) times the volume's size. A file that would pass it is
// not written, a warning names it, and Restore ends with an error wrapping
// ErrSharedData; AllowShared (--allow-shared-extents) lifts the bound.
//
// Linear LVM logical volumes on the point's physical volumes are volumes
// too, named "VG-LV" as device-mapper names them (guestdisk.ReadPV).
//
// Diff compares two trees by name: added, removed, and changed entries
// with the reasons (type, mode, owner, size, mtime, symlink target, and
// content — compared when size and mtime match, only where either file
// has data: holes in both are equal unread). DiffVolumes, for disks
// with chunk indexes (restorefs), first compares the chunk IDs under a
// file's extents: the same extents in the same chunks mean the same bytes,
// and the file is not read; otherwise both are read and compared.
package guestfiles
