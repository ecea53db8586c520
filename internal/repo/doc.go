// Package repo is the Holdfast repository: configuration and keys, the
// content-addressed chunk store, fixed indexes, restore point manifests,
// locks, garbage collection, verification, retention and statistics.
//
// Layout (names relative to the repository root; docs/repository-format.md
// has the byte layouts):
//
//	config               plain JSON: format version, chunk size, compression, encryption
//	keys/<id>            JSON key file: master secret wrapped by an argon2id password key
//	chunks/<xx>/<id>     one chunk blob; id = keyed BLAKE3-256 of the plain bytes
//	indexes/<point>/disk-<n>  fixed index blob of disk n of a point
//	points/<point>       manifest blob; its presence is what makes a point exist
//	locks/<id>.<kind>.<started>.<pid>.<host>  lock file (shared, shared-nt: backup, exclusive: gc)
//	gc-generation        random hex, rewritten by a gc before it sweeps object storage
//	holds/<point>/<holder>  JSON hold: forget and gc keep the point (instant recovery)
//	scans/<point>/<engine>  scan record blob: the newest malware scan of the point by that engine
//
// Every restore point is a complete index of its disks: removing a point
// never affects another. A backup writes chunks, then indexes, syncs, and
// only then writes the manifest (atomic rename), so a killed backup leaves
// no visible point; its chunks are reused by the next backup.
//
// Locking and GC: backups hold a shared lock and touch (refresh the
// modification time of) every chunk they reuse, and every chunk and index
// they write right after writing it (a file system's write times may lag
// the clock). GC holds the exclusive lock
// and deletes only chunks that no committed point references and that are
// older than min(GC start, oldest running backup start) − grace, moving
// each candidate aside and re-checking its time first; see GC. On object
// storage, where a touch is a billed COPY, backups hold no-touch locks
// instead and gc defers its sweep while one is live (gc_notouch.go); a
// local chunk cache (package chunkcache) then answers which chunks exist.
//
// A damaged manifest hides only its own point (ScanPoints reports it); GC
// then marks from that point's index files or deletes nothing. The config
// carries a MAC keyed by the master secret.
//
// Object Lock (objlock.go): a config with object_lock makes the repository
// write every file a point needs with an S3 retention through a decorator
// of its backend (a storage.Locker); a touch becomes a retention check and
// extension, deletes remove every version, RemovePoint refuses a locked
// point (forget_lock.go) and GC keeps locked files and relies on the
// server refusing to delete a version a backup extended (gc_lock.go).
// Recover peels delete markers and unlocked overwrites (recover.go).
//
// The repository is safe for concurrent use by goroutines and by several
// processes sharing the storage.
package repo
