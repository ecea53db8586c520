package guest

import "time"

// SSHTarget is the network path to a guest: its sshd and the credentials
// to log in with.
type SSHTarget struct {
	Addr string // host:port of the guest's sshd
	User string
	// Key is a PEM private key (OpenSSH, PKCS#8 or PKCS#1, unencrypted).
	// It is never logged or put into an error.
	Key []byte
	// HostKey is the expected host key fingerprint as printed by
	// ssh-keygen -l and ssh.FingerprintSHA256 ("SHA256:…"). Empty accepts
	// any key and reports it in Result.HostKey (trust on first use).
	HostKey string
}

// Target says how to reach a guest. At least one path must be set.
type Target struct {
	SSH         *SSHTarget // nil: no network path configured
	AgentSocket string     // QEMU guest agent socket (host side of virtio-serial); "": none
}

// Script is a shell script run with /bin/sh in the guest.
type Script struct {
	Name string // for messages, e.g. "pre-freeze"
	Body string
}

// Paths a script ran through (Result.Via, ScriptError.Via).
const (
	ViaSSH   = "ssh"
	ViaAgent = "guest-agent"
)

// Result describes a script run. Run returns the Result also with an error,
// filled as far as the run got.
type Result struct {
	Via      string // ViaSSH or ViaAgent
	ExitCode int    // -1 when the script was killed by a signal
	Output   string // stdout and stderr, at most MaxOutput bytes (the tail)
	Duration time.Duration
	HostKey  string // host key fingerprint the guest presented (ssh)
	Fallback string // why SSH was not used, when Via is ViaAgent
}
