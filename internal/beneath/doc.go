// Package beneath opens names confined to a directory: openat2(2) with
// RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS and RESOLVE_NO_MAGICLINKS, so that
// neither "..", an absolute name nor a symbolic link anywhere on the way
// leads out of it. Holdfast uses it wherever a name comes from bytes it
// does not trust (a VMDK descriptor on a shared datastore, a file name in a
// guest's file system) or a directory another user may write (a restore
// target).
package beneath
