// Package atomicfile replaces a file's contents all at once: a reader
// sees the old contents or the new, never a part, and after Write returns
// a crash keeps the new (temporary file in the same directory, fsync,
// rename over the file, fsync of the directory). WriteWith streams
// contents too large for memory (the chunk cache). The server's PKI files,
// instant recovery's session records and publish's session records are
// written through it.
package atomicfile
