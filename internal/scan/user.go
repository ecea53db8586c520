package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// nobodyID is the overflow UID/GID, used when no scan account exists.
const nobodyID = 65534

// engineUser resolves the account the engine runs as: nil when holdfast
// is not root (it runs unprivileged already) or name is "root"/UID 0.
func engineUser(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var u *user.User
	if name != "" {
		var err error
		if u, err = user.Lookup(name); err != nil {
			if u, err = user.LookupId(name); err != nil {
				return nil, fmt.Errorf("scan user %q: %w", name, err)
			}
		}
	} else {
		for _, n := range []string{"clamav", "nobody"} {
			if cand, err := user.Lookup(n); err == nil {
				u = cand
				break
			}
		}
		if u == nil {
			return &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}}, nil
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("scan user %q: %w", name, err)
	}
	if uid == 0 {
		return nil, nil // asked for root
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// dropRoot are setpriv(1)'s options that make the engine the scan user
// with CAP_DAC_READ_SEARCH alone (read any file, search any directory;
// no write, chown or other capability) (ambient, so it survives the exec),
// no_new_privs, and the securebits that keep it so: no_setuid_fixup lets
// access(2) honour the capability (clamscan checks every file with it),
// noroot stops UID 0 regaining capabilities; both locked. The parent
// death signal, cleared by the change of user, is set again.
var dropRoot = []string{"--clear-groups",
	"--securebits=+no_setuid_fixup,+no_setuid_fixup_locked,+noroot,+noroot_locked",
	"--bounding-set=-all,+dac_read_search", "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search",
	"--no-new-privs", "--pdeathsig=KILL"}

// command runs the engine program with args, in tmp (the engine's own
// temporary directory; "" for the default). When holdfast is root the
// engine runs as the scan user with CAP_DAC_READ_SEARCH alone, through
// setpriv(1): it reads every guest file whatever its owner and mode
// (published filesystems keep the guest's), but a bug in its parsers,
// which read hostile guest bytes, cannot write, chown, mount or signal
// as root.
func (e *Engine) command(ctx context.Context, tmp string, args ...string) *exec.Cmd {
	prog := e.program
	if e.cred != nil {
		pre := append([]string{fmt.Sprintf("--reuid=%d", e.cred.Uid), fmt.Sprintf("--regid=%d", e.cred.Gid)}, dropRoot...)
		args = append(append(pre, "--", prog), args...)
		prog = e.setpriv
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	if tmp != "" {
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	}
	// Its own process group: a terminal's ^C reaches holdfast, which then
	// stops the engine and unpublishes; the engine dies with holdfast.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// tempDir makes the engine's temporary directory (clamscan unpacks
// archives there), owned by the scan user: it may not write elsewhere.
func (e *Engine) tempDir() (string, error) {
	dir, err := os.MkdirTemp("", "holdfast-scan-")
	if err != nil {
		return "", err
	}
	if e.cred != nil {
		if err := os.Chown(dir, int(e.cred.Uid), int(e.cred.Gid)); err != nil {
			_ = os.Remove(dir)
			return "", err
		}
	}
	return dir, nil
}
