// Package pki is the backup server's own certificate authority.
//
// The server keeps one CA in its data directory:
//
//	ca.pem       the CA certificate (ECDSA P-256, self-signed, valid 10 years), mode 0644
//	ca-key.pem   its PKCS#8 private key, mode 0600 (Load refuses a group- or world-readable key)
//
// Init creates the CA once and loads it on every later call; Load only loads.
//
// The CA issues two kinds of leaf certificates (ECDSA P-256, one year by
// default, see WithLeafValidity):
//
//   - IssueServer: the server's TLS certificate, ServerAuth, with the given
//     host names and IP addresses as SANs and the URI SAN holdfast:server:NAME.
//   - IssueAgent: a certificate for a proxy or repository agent that joined
//     with a one-time token. The subject is CN=NAME, OU=ROLE, O=Holdfast and the
//     URI SAN holdfast:ROLE:NAME carries the identity; it has ClientAuth (the
//     agent calls the server and other agents) and ServerAuth (a repository
//     serves the data mover protocol). The agent may send a CSR so its key never
//     leaves it (NewCSR); without one the CA generates the key and returns it.
//
// Identity, not host names, is what peers check: ServerTLSConfig verifies
// client certificates against this CA only (tls.VerifyClientCertIfGiven, so
// the same listener can also serve the token-authenticated REST API and the
// join endpoint), and PeerIdentity / RequireRole / RequireAgent read the
// verified role and name. ClientTLSConfig trusts this CA only and checks the
// peer's role (and name, when given) from its URI SAN instead of its host name,
// so an agent reached by IP address or through NAT still verifies, and an
// agent certificate can never pass for the server.
//
// NewSessionCA makes a CA that lives in memory only, for one session's
// credentials (an Instant VM Recovery session's NBD exports): the server's
// API issues the requester one client certificate (IssueClient) from such a
// CA, the mount server its exports' certificate (IssueServer) from another;
// each CA is dropped once it has issued, so its key exists nowhere and
// nothing else trusts it.
//
// Every validity check uses the CA's clock (WithClock), which tests inject.
// Revocation is the caller's: the server stores each agent's certificate
// Fingerprint and refuses a peer whose fingerprint it no longer knows, and
// repository agents, which cannot ask the database, admit only the
// fingerprints the server vouches for in its heartbeat replies
// (agent.PeerSet).
package pki
