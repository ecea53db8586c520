// Package libvirt is the libvirt backup source: it backs up every disk of a
// running libvirt domain through libvirt's own backup API, over libvirt's
// RPC protocol spoken in pure Go (github.com/digitalocean/go-libvirt), so a
// VM managed by libvirt needs no second QMP socket.
//
//  1. Prepare connects (libvirt:///DOMAIN: the local qemu:///system socket;
//     a qemu+unix:///system?socket=PATH URI for another local daemon),
//     reads the domain XML (libvirt.org/go/libvirtxml) and picks its disks:
//     CD-ROMs, floppies, read-only and shareable disks are skipped with a
//     reason. It then starts a pull-mode backup job (virDomainBackupBegin)
//     whose NBD server listens on a unix socket in a private run directory,
//     with a scratch file per disk there, and creates in the same call a
//     checkpoint named holdfast-<tag>-<random>: that instant is the restore
//     point.
//  2. The pipeline reads each export with Holdfast's NBD client:
//     base:allocation, and for an incremental backup the export's
//     qemu:dirty-bitmap, the changes since Holdfast's previous checkpoint.
//  3. Release ends the job (virDomainAbortJob) on every path. On success
//     older holdfast-<tag>-* checkpoints are deleted (libvirt merges their
//     bitmaps into their parents), so at most Holdfast's latest remains; on
//     failure the new checkpoint is deleted instead, which merges its changes
//     back into the previous one, so nothing is lost. Checkpoints of other
//     tools are never touched.
//
// The checkpoint name is each disk's change ID. A previous point whose
// checkpoint is gone, or not Holdfast's, makes the backup read every
// allocated range and compare hashes, with the reason in a warning. The
// base is per disk (bases.go): a qcow2 disk is incremental only when the
// checkpoint has its bitmap and it is the previous point's disk at its
// index (by the checkpoint's domain XML); a disk attached since is read
// whole (backupmode='full') beside incremental ones.
//
// A shut-off domain is read from its disk files instead, with the format
// the domain XML gives (raw, qcow2 with its backing chain), whole.
//
// Remote daemons (qemu+ssh, libvirt+ssh://USER@HOST/DOMAIN): the
// connection comes from internal/libvirtconn; the run directory is made and
// removed on the libvirt host through it (Conn.MkdirTemp, Conn.RemoveAll)
// and every NBD connection is a channel of the same SSH connection
// (Conn.Dialer). A shut-off remote domain is refused.
//
// Options.Quiesce freezes the guest's file systems through the guest agent
// (virDomainFSFreeze) just before virDomainBackupBegin and thaws them right
// after, on every path; without an agent the point is crash-consistent
// with a warning (the guest_quiesce note says which).
//
// # The domain XML rewrite (domainxml.go, pure)
//
// ParseRecorded and Rewrite turn a recorded domain XML (repo.VMConfig.
// DomainXML: outside bytes) back into one to define, for restore
// --to-libvirt (internal/libvirtrestore) and instant recovery --libvirt
// (internal/instant) alike. The XML is parsed with libvirtxml and only
// re-marshalled, never spliced as text, and the result must read back.
// The point's disks are, in XML order, the disks the backup did not skip
// (skipReason): point disk 0, 1, …; each needs a distinct target usable in
// a file name. RewriteOptions say the differences:
//
//   - Disks, per point disk: a qcow2 File (driver type qcow2, the
//     recorded driver options kept), or an NBD Export on a unix Socket
//     (network disk, driver raw with QEMU's defaults). Backing chain,
//     mirror, auth, encryption and alias go; a SCSI LUN becomes a disk.
//     Skipped CD-ROMs and floppies stay as empty drives; read-only,
//     shareable and transient disks are dropped (Rewritten.Dropped).
//   - Identity: new by default — a new UUID (also SMBIOS system uuid;
//     hwuuid dropped), new MACs in 52:54:00, NVRAM from the firmware
//     template, no static security label of the original's; KeepIdentity
//     keeps them. FreshNVRAM gives a kept identity its own NVRAM too (a
//     domain whose undefine removes its NVRAM file).
//   - Network: keep, disconnect (every link down) or remove.
//   - ChardevDir: file-backed serial, console and channel output and
//     their logs go to DIR/console-N.log; unix channels get libvirt's
//     paths.
//   - Name: "" keeps the recorded one (CheckDomainName).
//
// Always removed: the domain id, interface device names (vnetN), the
// generated labels of dynamic security labels, and the VM generation ID
// (a new generation to the guest; libvirt makes one). Rewritten.Notes say
// each change a user should know of.
package libvirt
