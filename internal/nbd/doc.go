// Package nbd implements the Network Block Device protocol (fixed newstyle
// handshake, structured replies, block status) as a client and a server,
// using only the standard library.
//
// # Client
//
// Dial connects to nbd://host[:port]/export, nbds://… (TLS through
// NBD_OPT_STARTTLS), nbd+unix:///export?socket=PATH or nbds+unix://…, and
// negotiates structured replies, the meta contexts named in
// ClientOptions.MetaContexts ("base:allocation",
// "qemu:dirty-bitmap:NAME") and the export with NBD_OPT_GO (falling back to
// NBD_OPT_EXPORT_NAME). A Client is an io.ReaderAt and io.WriterAt safe for
// concurrent use: requests from many goroutines are pipelined on the one
// connection and a reader goroutine hands each reply to its caller by
// handle. Reads larger than the server's maximum block size (at most 32
// MiB) are split. Every call with a context honours its deadline and
// cancellation; a broken connection fails every request in flight.
//
// BlockStatus walks a meta context over any range (64-bit offsets, so a
// 4 TiB export is fine); AllocatedExtents and DirtyExtents cover a whole
// export. ListExports, GetInfo and ListMetaContexts query a server without
// entering transmission. MultiConn spreads reads over several connections
// when the server allows it.
//
// # Server
//
// Server offers named Exports (an io.ReaderAt, an optional io.WriterAt, an
// optional Allocation function for holes and zeros) on any net.Listener.
// It validates every request, serves up to ServerOptions.MaxInFlight
// requests per connection concurrently within a memory budget, answers
// READ with OFFSET_DATA and OFFSET_HOLE chunks, and supports
// base:allocation, TLS (optionally required) and an address allowlist.
//
// docs/nbd-protocol.md describes what is implemented and the limits.
package nbd
