// Package fuse serves the disks of a restore point as read-only files
// through FUSE (github.com/hanwen/go-fuse/v2): a flat directory holding
// disk0.img, disk1.img … whose sizes are the disks' exact sizes, so that a
// loop device can be attached to each (internal/publish does).
//
// Every read goes through Disk.ReadAtContext — restorefs.Disk, the one
// read path, with its chunk cache and read-ahead — bounded by the FUSE
// request's context (a reader that gives up cancels its wait). Nothing is
// copied out of the repository.
//
// Mount options: read-only (MS_RDONLY, "ro"), nodev, nosuid, noexec;
// requests of up to 1 MiB (max_read, MaxWrite) and a 1 MiB kernel
// read-ahead; direct_io off and FOPEN_KEEP_CACHE, so the kernel's page
// cache keeps what was read for the life of the mount (the content of a
// restore point never changes). allow_other is off unless Options.AllowOther:
// the loop driver reads the file in the kernel and needs no permission
// check, so publishing does not need it.
//
// Opening a file for writing fails with EROFS, as do setattr and create
// (the mount is read-only, and the nodes implement no writing operation).
// A read error of the disk (a missing or damaged chunk) is EIO to the
// reader and is logged with the error naming the point, disk and chunk.
package fuse
