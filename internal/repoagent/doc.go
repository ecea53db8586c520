// Package repoagent is the repository agent: it serves one repository to
// the backup server and its proxies over the data mover protocol (mutual
// TLS, internal/mover) and heartbeats to the server, until its context
// ends. It sits beside internal/proxy, the source-side agent; both join
// the server and keep their credentials through internal/server/agent.
//
// Only certificates the server vouches for in its heartbeat replies get
// in (agent.PeerSet): the server's own and each registered proxy's current
// one. Access then decides what each may do — the server everything, a
// proxy reading and a bounded number of sessions of its own, nobody else
// anything. When the server stops vouching for a certificate (its proxy
// was deleted or re-joined), that certificate's mover sessions end within
// a heartbeat interval.
package repoagent
