package apitypes

import (
	"encoding/json"
	"time"
)

// Agent is a proxy or repository agent that joined.
type Agent struct {
	ID              int64           `json:"id"`
	Role            string          `json:"role"`
	Name            string          `json:"name"`
	Address         string          `json:"address,omitempty"`
	Slots           int             `json:"slots"`
	Capabilities    json.RawMessage `json:"capabilities,omitempty"`
	CertFingerprint string          `json:"cert_fingerprint,omitempty"`
	Registered      time.Time       `json:"registered"`
	LastHeartbeat   *time.Time      `json:"last_heartbeat,omitempty"`
	// Online: the agent heartbeated within the server's agent timeout.
	Online bool `json:"online"`
}

// JoinRequest is the body of POST /api/v1/agents/join.
type JoinRequest struct {
	Token   string `json:"token"`   // one-time join token
	Role    string `json:"role"`    // proxy or repository
	Name    string `json:"name"`    // agent name
	CSR     string `json:"csr"`     // PEM certificate request (pki.NewCSR)
	Address string `json:"address"` // host:port the agent serves on; may be empty for proxies
	Slots   int    `json:"slots"`   // concurrent task slots
}

// JoinResponse carries the issued certificate and the CA to trust.
type JoinResponse struct {
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
	Fingerprint string `json:"fingerprint"`
}

// HeartbeatRequest optionally updates what the agent announced at join.
type HeartbeatRequest struct {
	Address string `json:"address,omitempty"`
	Slots   int    `json:"slots,omitempty"`
	// Capabilities, if set, replace what the agent announced before (a
	// proxy: {"transports": [...], "reach": [...]}).
	Capabilities json.RawMessage `json:"capabilities,omitempty"`
}

// HeartbeatReply answers a heartbeat. Peers, for a repository agent only,
// lists every certificate that may use its data mover service now: the
// current certificate of each registered proxy and the server's own. The
// agent refuses every other certificate, so a deleted or re-joined proxy's
// old certificate stops working at the agent's next heartbeat.
type HeartbeatReply struct {
	Role  string    `json:"role"`
	Name  string    `json:"name"`
	Time  time.Time `json:"time"`
	Peers []Peer    `json:"peers,omitempty"`
}

// Peer is one certificate the server vouches for.
type Peer struct {
	Role        string `json:"role"`
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
}

// JoinTokenRequest is the body of POST /api/v1/agents/join-tokens.
type JoinTokenRequest struct {
	Role       string `json:"role"`                  // proxy or repository
	TTLSeconds int64  `json:"ttl_seconds,omitempty"` // 0: the server default
}

// JoinToken answers POST /api/v1/agents/join-tokens: the token, this once.
type JoinToken struct {
	Role    string    `json:"role"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}
