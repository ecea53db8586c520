// Package storagetest is the test kit of the repository storage interface
// (internal/repo/storage): a conformance suite every backend must pass, an
// in-memory backend and a fault-injecting wrapper.
//
//   - Run(t, newBackend) checks the contract written in storage.Backend:
//     Save/Load round trips and overwrites, Stat sizes, recursive List that
//     never reports partial writes, Touch, Rename (never replaces a target),
//     Remove (a missing file is no error), "not found" classified as
//     storage.ErrNotExist by every method that names a file, atomic Save
//     (a concurrent reader sees the old or the new content, never a mix or a
//     prefix), concurrent Saves, Save not keeping the caller's buffer and
//     cancelled contexts refused. The local backend runs it in
//     internal/repo/storage; every new backend (object storage) must too.
//   - NewMem is an in-memory Backend for tests that need neither files nor
//     real modification times; it passes the suite.
//   - Faulty wraps any Backend and injects errors, short reads and corrupted
//     reads per operation and name prefix (Fault), counting calls, so tests
//     of the layers above prove how they handle a failing store.
//
// It is a non-test package so the tests of any package can use it; it
// imports only the storage package, so internal/repo's own tests can too.
package storagetest
