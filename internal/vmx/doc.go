// Package vmx writes what ESXi needs to register a VM from files on a
// datastore — a .vmx configuration and per disk a VMDK text descriptor
// naming a flat extent — from the configuration a restore point recorded
// (repo.VMConfig), and reads .vmx text back (Parse).
//
// A .vmx file is lines of `key = "value"`. Values come from the manifest,
// so from the source platform (a VM's name, a network name): every value is
// quoted and encoded (Quote) so that no name can end its line or its
// quotes and inject keys. The encoding is VMware's: a byte that is a
// control character, `"`, `|`, `\` or DEL, or a byte of invalid UTF-8,
// becomes `|` and two upper-case hex digits (a quote is |22, a newline
// |0A); other UTF-8 stays as it is (.encoding = "UTF-8"). File names are
// made from names by FileBase, which keeps only [A-Za-z0-9._-].
//
// The VM gets new MAC addresses (ethernetN.addressType = "generated") and
// a new UUID (uuid.action = "create"), so it can run next to the original.
// Disks sit on the controller and unit the point recorded when that slot
// is valid and free, else on the next free unit of the same kind.
package vmx
