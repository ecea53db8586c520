// Package nfs publishes restore points as NFSv3 directories for Instant
// VM Recovery: each Export is a flat directory of Files (disk images,
// descriptors) backed by an io.ReaderAt and, for writable files, an
// io.WriterAt.
//
// The Server speaks ONC RPC v2 (record marking on TCP, datagrams on UDP)
// and runs three programs, so that clients without port options (QEMU's
// nfs:// driver, ESXi) find everything through the portmapper:
//
//   - portmapper 100000 v2 (TCP and UDP, port 111): NULL, SET, UNSET,
//     GETPORT, DUMP; SET and UNSET only from loopback.
//   - MOUNT 100005 v3 (TCP and UDP, port 1058): NULL, MNT, DUMP, UMNT,
//     UMNTALL, EXPORT.
//   - NFS 100003 v3 (TCP, port 2049): NULL, GETATTR, SETATTR, LOOKUP,
//     ACCESS, READ, WRITE, CREATE, MKDIR, REMOVE, RMDIR, RENAME (the last
//     five, and CREATE of a new name, in the export's scratch area),
//     READDIR, READDIRPLUS, FSSTAT, FSINFO, PATHCONF, COMMIT; the rest
//     answer NFS3ERR_NOTSUPP.
//
// File handles depend only on the export path and the file name, so they
// survive restarts of the service; a handle of a removed export is stale.
// Files have a fixed size: writes past the end and size changes are
// refused. A file may sit in a directory ("vm/vm-flat.vmdk", one level).
// An export's scratch area (Export.Scratch, scratch.go) is a local
// directory shown next to its files where clients create, write, resize,
// rename and remove what they like (ESXi's locks, swap file and logs);
// its handles carry inode numbers, so they survive renames and restarts. Only clients in Options.Allow (default: loopback) may mount or
// use the exports.
//
// Clients lists the clients the Server knows: NFSv3 has no sessions, so a
// client is an address that holds an NFS TCP connection open now or that
// used an export (a request, or MOUNT) within a window the caller gives.
// A client that mounted and went away without UMNT is not listed once the
// window passes.
//
// Requests on one TCP connection are served concurrently (up to 8), each
// record is bounded by MaxRecordSize, READ and WRITE by MaxRead and
// MaxWrite. Malformed arguments are answered with GARBAGE_ARGS.
//
// docs/nfs-protocol.md describes the wire format, handles and limits.
package nfs
