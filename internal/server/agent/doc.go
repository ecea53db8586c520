// Package agent is what proxy and repository agents share: joining the
// backup server with a one-time join token (Join), keeping the issued
// credentials in a state directory (SaveState, LoadState), and
// heartbeating over mutual TLS (Client.Heartbeat, Client.HeartbeatLoop).
//
// The agent generates its key (pki.NewCSR) and sends only a CSR: the key
// never leaves the agent. The server's answer carries the certificate and
// the CA certificate; from then on the agent trusts that CA only and
// checks the server by its holdfast:server identity, not its host name.
//
// State directories follow the platform (DefaultStateDir):
// $STATE_DIRECTORY/ROLE-NAME under systemd, /var/lib/holdfast/ROLE-NAME as
// root, else the XDG state directory; ChooseStateDir still picks a directory
// an earlier version used if only it holds credentials. Credentials saved
// from another server (a reinstalled server, a new CA: the saved CA does not
// sign the server's certificate) are ErrForeignServer (CheckServer at start,
// IsForeignServer on any call's error): only a new join helps.
//
// A repository agent (internal/repoagent) admits to its data mover service
// only the certificates the server vouches for in its heartbeat replies:
// the server's own and each registered proxy's current one (PeerSet).
// Deleting or re-joining a proxy thus revokes its old certificate on every
// repository agent within a heartbeat interval.
package agent
