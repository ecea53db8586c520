// Package file reads virtual disks from local files and block devices: raw
// images, qcow2 and VMDK images.
//
// Open takes a local path or a file:// URL (file:///abs/path, percent-
// encoded; host empty or "localhost"). Only a regular file or a block device
// is opened — the disk, VMDK extent files and qcow2 backing files alike: the
// type is checked with stat before open(2) (a character device may act on
// open) and again with fstat on a descriptor opened O_NONBLOCK, so a FIFO
// swapped in between never blocks; a FIFO, character device, directory or
// socket is refused, naming its type. A missing file gives an error wrapping
// source.ErrNotFound; other failures (permissions, unsupported or corrupt
// images) give errors naming the path. Every disk returned implements
// source.Disk: ReadAt is safe for concurrent use and behaves like
// os.File.ReadAt past Size (short read and io.EOF); Allocated lists, sorted
// and coalesced, the ranges that may hold data, found from the image's
// metadata without reading data.
//
// The format of a regular file is Options.Format if given, else detected from
// its content, never from its name; a block device is always read raw:
//
//   - qcow2 ("QFI\xfb"), versions 2 and 3, read with go-qcow2reader:
//     zlib and zstd compressed clusters, zero clusters, extended L2
//     entries, and backing chains of qcow2 or raw files (at most 16 deep,
//     names resolved relative to the image naming them) when
//     Options.FollowBacking is set with the format given as qcow2 (the
//     chain is checked here, then go-qcow2reader opens it again by name).
//     Allocated is the union of what every image of the chain stores (zero
//     clusters excluded), from the L1/L2 tables. Refused: encryption, external data
//     files, other backing formats, a backing file without FollowBacking
//     (ErrReference). Format "qcow2".
//   - VMDK text descriptor ("# Disk DescriptorFile", at most 1 MiB) with
//     FLAT, VMFS, ZERO and SPARSE extents; file names are relative to the
//     descriptor's directory (absolute names are honoured), opened only when
//     the format is given as vmdk. Format "vmdk-sparse" if any extent is
//     sparse, else "vmdk-flat". OpenVMDK reads the same through a
//     VMDKFiles opener (a datastore over HTTPS, a mounted datastore);
//     there an extent name must stay in the descriptor's directory.
//     BeneathFiles is such an opener for a directory whose names are not
//     trusted (a mounted datastore): openat2 RESOLVE_BENEATH without
//     symbolic links, regular files and block devices only (ErrEscape).
//   - VMDK hosted sparse extent ("KDMV", monolithicSparse or an extent of
//     twoGbMaxExtentSparse): grain directory, grain tables (read on demand
//     through a small cache), zeroed-grain entries. Format "vmdk-sparse".
//   - VMDK streamOptimized (a sparse extent with deflate-compressed grains
//     behind grain markers, as OVA/OVF exports carry): the grain directory
//     in the header (qemu-img) or in the footer before the end-of-stream
//     marker (VMware, gdOffset GD_AT_END). Each read inflates the grains it
//     touches (a zlib stream per grain, checksum verified, at most one grain
//     long; grains of at most 1 MiB), so memory is bounded by the grain
//     size, not the disk. A grain marker must name its own grain's sector.
//     Format "vmdk-sparse". Refused: ESX COWD extents, delta disks
//     (parentCID set), SEsparse, compression without markers.
//   - raw: anything else. Regular files find their data with
//     SEEK_DATA/SEEK_HOLE (format "raw"); block devices are fully allocated
//     (format "block").
//
// Every header field read from an image is validated (ranges, overflow,
// sizes bounded by the file) before use, so corrupt input gives an error,
// never a panic or a large allocation; the fuzz tests check this.
//
// Detecting formats from content trusts bytes the guest of a raw disk
// controls: it can write a qcow2 header or a VMDK descriptor at sector 0.
// So a detected image never reads another file — a detected qcow2 image
// with a backing file and a detected descriptor naming extent files are
// refused with ErrReference, naming the image — and callers that back up a
// disk again pass the format it was read with before (RecordedFormat of the
// previous point's format), so a raw disk stays raw whatever its guest
// writes. A detected self-contained image (qcow2 without backing file, VMDK
// monolithicSparse) is read as that format: only guest data then.
package file
