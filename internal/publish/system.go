package publish

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// System runs the host's tools and reads its state. Host is the real one;
// tests use a fake.
type System interface {
	// Run runs a command and returns its standard output; a command that
	// exits non-zero gives an *ExitError.
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
	// MountsAt returns the filesystems mounted at path, the one on top
	// (the one umount would unmount) last.
	MountsAt(path string) ([]Mount, error)
	// DevNumber returns the "major:minor" of device node dev.
	DevNumber(dev string) (string, error)
	// LoopBacking returns the backing file of loop device dev ("" when it
	// has none: detached).
	LoopBacking(dev string) (string, error)
	// LoopsOf returns the loop devices whose backing file is file.
	LoopsOf(file string) ([]string, error)
	// DeviceMapper reports whether the kernel has device-mapper (LVM).
	DeviceMapper() bool
}

// ExitError is a command that exited non-zero.
type ExitError struct {
	Command string
	Code    int
	Stderr  string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Command + ": " + msg
}

// exitCode returns the exit status of a failed command, -1 for other
// errors.
func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}

// Host is the System of this machine.
type Host struct{}

var _ System = Host{}

// Run runs name with args, without a shell.
func (Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.Bytes(), &ExitError{Command: name + " " + strings.Join(args, " "), Code: ee.ExitCode(), Stderr: errb.String()}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out.Bytes(), nil
}

// Mount is a filesystem mounted somewhere, as mountinfo lists it.
type Mount struct {
	Dev    string // "major:minor" of what is mounted
	FSType string
	Source string // the device (or a FUSE server's name)
}

func (m Mount) String() string { return fmt.Sprintf("%s (%s, device %s)", m.Source, m.FSType, m.Dev) }

// MountsAt reads /proc/self/mountinfo.
func (Host) MountsAt(path string) ([]Mount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return mountsIn(b, path), nil
}

// mountsIn returns the mounts mountinfo lists at path, in its order
// (later mounts on top of earlier ones).
func mountsIn(mountinfo []byte, path string) []Mount {
	var out []Mount
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) <= 4 || unescapeMount(f[4]) != path {
			continue
		}
		m := Mount{Dev: f[2]}
		// optional fields, then "-", the type and the source
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				if i+1 < len(f) {
					m.FSType = unescapeMount(f[i+1])
				}
				if i+2 < len(f) {
					m.Source = unescapeMount(f[i+2])
				}
				break
			}
		}
		out = append(out, m)
	}
	return out
}

// DevNumber stats dev.
func (Host) DevNumber(dev string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return "", &os.PathError{Op: "stat", Path: dev, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", fmt.Errorf("%s: not a block device", dev)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), nil
}

// unescapeMount undoes the octal escapes of mountinfo (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}

// LoopBacking reads /sys/block/loopN/loop/backing_file.
func (Host) LoopBacking(dev string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// LoopsOf scans /sys/block/loop*/loop/backing_file (losetup -j would
// stat the file, which fails once its FUSE server is gone).
func (h Host) LoopsOf(file string) ([]string, error) {
	ms, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		if strings.TrimSuffix(string(b), "\n") == file {
			out = append(out, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(m))))
		}
	}
	return out, nil
}

// DeviceMapper looks for device-mapper in /proc/misc.
func (Host) DeviceMapper() bool {
	b, err := os.ReadFile("/proc/misc")
	return err == nil && bytes.Contains(b, []byte(" device-mapper\n"))
}
