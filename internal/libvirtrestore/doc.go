// Package libvirtrestore brings a restore point of a libvirt domain back
// into libvirt: every disk written as a qcow2 image, the domain defined
// from the XML the backup recorded (repo.VMConfig.DomainXML), and started
// on request. Disks are read through restorefs and written by the one
// restore writer (pipeline.OpenTarget with format qcow2, RestoreDisk).
//
// # The XML
//
// The recorded XML is rewritten by libvirt.Rewrite (internal/source/libvirt,
// the one rewrite instant recovery uses too): every backed-up disk a file
// disk on its restored image, driver type qcow2 (other driver attributes
// kept); the identity new (UUID, SMBIOS, MACs, NVRAM from the template, no
// static security label of the original's) or kept; with Disconnect every
// interface's link down. See that package's documentation.
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
