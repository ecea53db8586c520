package guest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// killTimeout bounds the clean-up after a timeout (kill, remove the file).
const killTimeout = 10 * time.Second

// remoteRun is the command of the SSH session that runs a script. It is
// executed by the user's login shell, hence the exec: the POSIX shell
// replaces it and keeps its pid, which sshd made a session and process
// group leader. The script file is written from stdin with umask 077,
// checked for its full size (a cut upload must not run), run with stdin
// from /dev/null and removed. F and N are substituted.
const remoteRun = `exec /bin/sh -c 'umask 077
f=@FILE@
cat > "$f" && [ $(wc -c < "$f") -eq @SIZE@ ] || { rm -f "$f"; echo "holdfast: cannot write $f" >&2; exit 125; }
echo $$ > "$f.pid"
/bin/sh "$f" < /dev/null
rc=$?
rm -f "$f" "$f.pid"
exit $rc'`

// remoteKill terminates the process group recorded for F (TERM, then KILL
// after 2 s) and removes the script files.
const remoteKill = `exec /bin/sh -c 'f=@FILE@
pg=$(cat "$f.pid" 2>/dev/null)
if [ -n "$pg" ]; then
  kill -TERM -"$pg" 2>/dev/null || kill -TERM "$pg" 2>/dev/null
  i=0
  while kill -0 -"$pg" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done
  kill -KILL -"$pg" 2>/dev/null
fi
rm -f "$f" "$f.pid"'`

// runSSH runs s over c, bounded by ctx; timeout is what ctx's deadline
// stands for, for the error message.
func runSSH(ctx context.Context, c *ssh.Client, s Script, res *Result, timeout time.Duration) error {
	file, err := remoteName()
	if err != nil {
		return err
	}
	sess, err := c.NewSession()
	if err != nil {
		return fmt.Errorf("ssh: new session: %w", err)
	}
	defer sess.Close()
	out := newTailBuffer(MaxOutput)
	sess.Stdout, sess.Stderr = out, out
	stdin, err := sess.StdinPipe()
	if err != nil {
		return fmt.Errorf("ssh: %w", err)
	}
	cmd := strings.NewReplacer("@FILE@", file, "@SIZE@", strconv.Itoa(len(s.Body))).Replace(remoteRun)
	if err := sess.Start(cmd); err != nil {
		return fmt.Errorf("ssh: start script %q: %w", s.Name, err)
	}
	go func() {
		_, _ = io.WriteString(stdin, s.Body) // an early exit shows in Wait
		stdin.Close()
	}()
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	select {
	case err = <-done:
	case <-ctx.Done():
		killErr := killSSH(context.WithoutCancel(ctx), c, file)
		sess.Close()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		res.Output = out.String()
		return timeoutError(ctx, s, ViaSSH, timeout, killErr)
	}
	res.Output = out.String()
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && exit.Signal() != "":
		res.ExitCode = -1
		return &ScriptError{Name: s.Name, Via: ViaSSH, ExitCode: -1, Signal: exit.Signal(), Output: res.Output}
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitStatus()
		return &ScriptError{Name: s.Name, Via: ViaSSH, ExitCode: res.ExitCode, Output: res.Output}
	}
	return fmt.Errorf("ssh: script %q: %w", s.Name, err)
}

// killSSH runs remoteKill for file in a new session.
func killSSH(ctx context.Context, c *ssh.Client, file string) error {
	ctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	sess, err := c.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	return sess.Run(strings.ReplaceAll(remoteKill, "@FILE@", file))
}

// remoteName returns a fresh /tmp/holdfast-<random>.sh; only hex digits
// follow the prefix, so the name needs no quoting in the remote commands.
func remoteName() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "/tmp/holdfast-" + hex.EncodeToString(b[:]) + ".sh", nil
}

// timeoutError is the error of a script whose ctx ended: ErrTimeout when
// its own timeout expired, the ctx error when the caller cancelled. killErr
// is a failure to clean up.
func timeoutError(ctx context.Context, s Script, via string, timeout time.Duration, killErr error) error {
	cause := context.Cause(ctx)
	var err error
	if errors.Is(cause, ErrTimeout) {
		err = fmt.Errorf("guest script %q %w after %s (via %s)", s.Name, ErrTimeout, timeout, via)
	} else {
		err = fmt.Errorf("guest script %q (via %s): %w", s.Name, via, ctx.Err())
	}
	if killErr != nil {
		return fmt.Errorf("%w; killing it failed: %v", err, killErr)
	}
	return fmt.Errorf("%w; its processes were killed", err)
}
