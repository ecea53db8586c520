// Package libvirtrestore brings a restore point of a libvirt domain back
// into libvirt: every disk written as a qcow2 image, the domain defined
// from the XML the backup recorded (repo.VMConfig.DomainXML), and started
// on request. Disks are read through restorefs and written by the one
// restore writer (pipeline.OpenTarget with format qcow2, RestoreDisk).
//
// # The XML (Rewrite, pure)
//
// The recorded XML is outside bytes (it came out of a repository): it is
// parsed with libvirtxml and only re-marshalled, never spliced as text. The
// backed-up disks are, in XML order, the disks the backup source did not
// skip (libvirt.SkipReason): point disk 0, 1, …. Each becomes a file disk
// whose source is its restored image, driver type qcow2 (other driver
// attributes kept), with no backing chain, mirror, auth or encryption. The
// disks the backup skipped: CD-ROMs and floppies stay as empty drives,
// read-only, shareable and transient disks are left out; a note names each.
// Run-time state goes: the domain id, interface device names (vnetN), the
// labels of dynamic security labels, and the VM generation ID (a restore is
// a new generation; libvirt makes one). With a new identity the domain
// gets a new UUID (also in SMBIOS; hwuuid dropped), new MAC addresses in
// 52:54:00, a fresh NVRAM file from the firmware template and no fixed
// (static) security label of the original's. With Disconnect every
// interface stays, with its link state down.
//
// # The steps (Restore)
//
//  1. Before any change: the XML is parsed and rewritten, a domain of the
//     restored name is refused unless Force, and so is any existing image
//     file NAME-TARGET.qcow2 in the pool directory. The identity is new
//     unless the name is the recorded one and no other domain holds the
//     recorded UUID.
//  2. With Force and a domain of that name: it is stopped (destroyed) if
//     running, since its images may be the files being replaced.
//  3. Every disk is restored into a temporary image; only when all are
//     written are they renamed into place. A failure leaves no new file.
//  4. The replaced domain is undefined (its managed save, snapshot and
//     checkpoint metadata with it; NVRAM and TPM state kept) and the new
//     one defined. If defining fails, the images this run created are
//     removed and the replaced domain is defined again.
//  5. With Start the domain is started; if that fails it stays defined.
package libvirtrestore
