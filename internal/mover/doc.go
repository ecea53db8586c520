// Package mover is the data mover protocol of the distributed mode: a
// backup proxy runs the pipeline against a repository served by a remote
// repository agent, over HTTP/2 with mutual TLS.
//
// The agent runs a Server (an http.Handler) over one or more opened
// repositories. The proxy uses a Client, which implements repo.Sink and
// repo.PointReader, so pipeline.BackupPoint and restores through restorefs
// run unchanged against it.
//
// Division of work:
//
//   - The proxy fetches the repository's config and (password-wrapped) key
//     files, opens the keys with the job's password, and from then on
//     hashes, compresses and encrypts chunks itself (repo.SealChunk): the
//     WAN carries only sealed, reduced data, and restores open and verify
//     chunks on the proxy too.
//   - The agent verifies every uploaded blob before storing it
//     (repo.PutSealedChunk: it must open with the repository key and hash to
//     its ID), stores indexes, commits manifests and holds the shared lock.
//
// A backup is one session: it takes the repository's shared lock on the
// agent and keeps it until commit, abort or expiry after inactivity.
// Sessions outlive connections: every request names the session, so a client
// whose connection dropped reconnects and continues. Every request is
// idempotent (chunk uploads by content ID, index uploads by point and disk,
// commit by point ID), so the client simply retries, and before resending a
// chunk it asks whether the interrupted attempt already stored it.
//
// A session is private to the client certificate that started it, unless
// the owner asks for a shared one (ClientOptions.Shared): then other
// authorized clients that know its ID (Client.SessionID, Client.Attach)
// upload chunks and indexes into it too, for example one disk each of a
// VM on different proxies, while only the owner commits the one restore
// point or aborts the session (others get 403, ErrNotSessionOwner).
//
// ServerOptions.Authorize says what each client may do (Access): how many
// sessions it may hold at once (beyond: 429, ErrTooManySessions) and
// whether it may list the points, whose manifests name VMs and disks in
// clear. Server.EndSessions ends the sessions of certificates revoked
// meanwhile and releases their locks; an idle session ends by itself after
// ServerOptions.SessionTTL.
//
// Presence checks are batched: "has" takes up to MaxHasIDs IDs, reports
// which are stored and touches those (GC safety, as repo.TouchChunk). The
// client prefetches the previous point's chunk IDs when the pipeline loads
// that index during a session, and coalesces concurrent TouchChunk misses
// into one request.
//
// Client.Stats reports traffic and stage timings (sealing, uploading, and
// the agent's verify-and-store time from the Holdfast-Store-Micros reply
// header) for telling which stage limits a backup.
//
// docs/data-mover-protocol.md describes the endpoints, byte layouts, error
// codes and limits.
package mover
