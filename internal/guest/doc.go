// Package guest runs guest-processing scripts inside Linux guests for
// backup jobs: the pre-freeze script before the snapshot (or fsfreeze) and
// the post-thaw script after it, as Veeam's "application-aware processing"
// does.
//
// Run executes one Script in one guest and returns a Result. It takes the
// network path first and the guest agent only when there is no network
// path:
//
//   - SSH (Target.SSH): dial (at most 10 s for TCP connect and handshake),
//     check the host key against SSHTarget.HostKey ("SHA256:…"; "" accepts
//     any key and reports it in Result.HostKey), authenticate with the
//     private key, then in one session upload the script through stdin into
//     a 0600 file /tmp/holdfast-<random>.sh, run it with /bin/sh (stdin
//     /dev/null) and remove it. The remote wrapper records its pid, which
//     is the session's process group, so a timeout kills the script and all
//     its children.
//   - The QEMU guest agent (Target.AgentSocket): guest-exec of "/bin/sh -s"
//     with the script as input-data and capture-output, polled with
//     guest-exec-status.
//
// Fallback rules: the guest agent is used when Target.SSH is nil, or when
// the TCP connection cannot be made or breaks before the server shows its
// host key (refused, unreachable, timed out, reset). A host key mismatch
// (ErrHostKeyMismatch, *HostKeyError), an authentication failure, an
// unusable private key or any failure after the host key was checked is
// final: falling back there would let whoever answers on the guest's
// address decide how the script runs. With neither path usable, the error
// wraps ErrUnreachable (or ErrNoPath when nothing is configured) and names
// both causes.
//
// Timeouts: the timeout given to Run bounds the script's execution (upload,
// run, output), not the connection set-up, which has its own 10 s limit;
// ctx bounds everything. When the timeout expires the remote process group
// is sent SIGTERM, then SIGKILL after 2 s, the script file is removed, and
// the error wraps ErrTimeout. A non-zero exit or a death by signal is a
// *ScriptError carrying the exit code and output, so callers can apply
// their policy (fail the job, warn, ignore).
//
// Output: stdout and stderr together, at most MaxOutput bytes; longer
// output keeps its tail behind a "[holdfast: N bytes of output dropped]"
// line. Over SSH the two streams are interleaved as they arrive; through
// the guest agent, stdout comes before stderr.
//
// Secrets: the private key and the script body never appear in errors.
// The package does not log; everything is in the Result and the error.
//
// docs/guest-processing.md describes the behaviour for operators.
package guest
