// Package publish publishes a restore point on this Linux host as mounted,
// read-only folders, and takes it down again.
//
// Publish, in order, recording each step in the session's record before
// and after doing it:
//
//  1. makes a private directory STATE/ID/disks and serves the point's disks
//     there through FUSE (internal/export/fuse: disk0.img …, read through
//     restorefs) from this process;
//  2. attaches each disk file to a read-only loop device
//     (losetup -r --find --show);
//  3. adds the partition devices (partx -a: this kernel's losetup -P makes
//     none); a disk whose partition table partx cannot read is probed as
//     a whole;
//  4. probes each partition (or whole disk) with blkid -p;
//  5. LVM physical volumes: activates their volume groups read-only, with
//     LVM restricted to the devices Publish attached (--devices) so it
//     never touches the host's volumes; a volume group whose name is
//     already in use on the host is skipped and reported, as is LVM on a
//     kernel without device-mapper;
//  6. mounts every ext2/3/4, xfs, btrfs and vfat filesystem read-only with
//     nodev,nosuid,noexec — ext* with noload, xfs with norecovery,nouuid
//     (two points of a VM share the UUID) — under MOUNT/VM/diskN-pM,
//     MOUNT/VM/diskN (no partition table) or MOUNT/VM/LV. Swap, LVM
//     physical volumes and what blkid does not recognise are listed, not
//     mounted. A filesystem that fails to mount, a damaged partition table
//     or an unreadable volume group is reported in Session.Problems and the
//     rest is still published. A mount directory Publish creates is
//     mode 0700: guest files keep the guest's owners and modes, which
//     would otherwise let a host user with a guest user's UID read them.
//
// Partition devices that partx adds outlive the loop device's detach, so
// the loop device Publish gets may carry a previous user's: they are
// removed (partx -d) before the disk's own are added.
//
// Close (unpublish) undoes the recorded steps in reverse: umount,
// vgchange -an, partx -d, losetup -d, FUSE unmount, and removes the
// directories Publish created (never one it did not create). A partition
// or loop device that a scanner holds open for a moment (udev's blkid, an
// LVM command scanning every block device), and the FUSE mount a detached
// loop device still holds until the kernel releases it, are tried again,
// 100 ms apart, for about 10 s. A step that cannot be undone (a busy mount, a device
// busy for longer) stops Close with an error; the steps left stay in the
// record.
//
// # Records
//
// Records (a directory, Options.StateDir) holds one JSON file per session,
// ID.json, written atomically: the serving process's PID and start time,
// the steps, disks and filesystems. A step is recorded with done=false
// before it is attempted and done=true after, so the record of a killed
// process names everything that may exist: Cleanup undoes the steps of
// sessions whose process is gone. A process is the session's only if its
// PID and start time match the record: Unpublish signals no other (a
// record without a start time counts as a dead session's). Undo checks
// before acting: a mount is unmounted only while it is the recorded device
// (compared by device number) or the session's FUSE server on top at the
// recorded path (anything else mounted there is left alone, with a
// warning: ErrNotOurs); a loop device is detached only while
// its backing file is the session's disk file (a loop number reused by
// someone else is left alone); a pending loop step is resolved by looking
// for loop devices backed by the session's file.
//
// The records directory, and a mount directory that exists already, must
// be private: a directory (not a symbolic link) owned by this user and
// writable by no one else, or Publish, Unpublish and Cleanup refuse it
// (ErrNotPrivate). A record names what cleanup unmounts, detaches and
// deactivates, so one another user could write is not trusted; and the
// default mount directory's name is given away by the session ID in the
// serving process's arguments.
//
// Everything that runs a tool or reads the host's state goes through the
// System interface, so the step and undo logic is tested with a fake.
package publish
