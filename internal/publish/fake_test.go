package publish

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeSys is a System whose commands answer from a script and whose
// state (mounts, loop devices) the commands change as the real ones
// would.
type fakeSys struct {
	mu      sync.Mutex
	answers map[string]string // command line → stdout ("!CODE stderr": fails with exit CODE)
	calls   []string
	mounted map[string]bool
	sources map[string]string  // mountpoint → what is mounted there (mount's device argument)
	over    map[string][]Mount // mountpoint → mounts of others on top of what mounted has
	devnums map[string]string  // device → its number (default: "num(" + device + ")")
	parts   map[string]bool    // loop devices with partition devices (partx -a fails on them, as the kernel EBUSY)
	loops   map[string]string  // loop device → backing file
	busy    map[string]int     // command line → times it fails "Device or resource busy" before it works
	next    int
	dm      bool
}

func newFake() *fakeSys {
	return &fakeSys{answers: map[string]string{}, mounted: map[string]bool{}, sources: map[string]string{},
		over: map[string][]Mount{}, devnums: map[string]string{}, parts: map[string]bool{}, loops: map[string]string{}, busy: map[string]int{},
		next: 7, dm: true}
}

func (f *fakeSys) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := strings.Join(append([]string{name}, args...), " ")
	f.calls = append(f.calls, line)
	if f.busy[line] > 0 {
		f.busy[line]--
		return nil, &ExitError{Command: line, Code: 1, Stderr: name + ": " + args[len(args)-1] + ": Device or resource busy"}
	}
	if ans, ok := f.answers[line]; ok && strings.HasPrefix(ans, "!") {
		var code int
		var msg string
		_, _ = fmt.Sscanf(ans, "!%d", &code)
		_, msg, _ = strings.Cut(ans, " ")
		return nil, &ExitError{Command: line, Code: code, Stderr: msg}
	}
	switch {
	case name == "losetup" && args[0] == "-r":
		dev := fmt.Sprintf("/dev/loop%d", f.next)
		f.next++
		f.loops[dev] = args[len(args)-1]
		return []byte(dev + "\n"), nil
	case name == "losetup" && args[0] == "-d":
		delete(f.loops, args[1])
	case name == "partx" && args[0] == "-a":
		if f.parts[args[1]] {
			return nil, &ExitError{Command: line, Code: 1, Stderr: "partx: " + args[1] + ": error adding partition 1"}
		}
		f.parts[args[1]] = true
	case name == "partx" && args[0] == "-d":
		delete(f.parts, args[1])
	case name == "mount":
		f.mounted[args[len(args)-1]] = true
		f.sources[args[len(args)-1]] = args[len(args)-2]
	case name == "umount":
		if n := len(f.over[args[0]]); n > 0 { // the top one
			f.over[args[0]] = f.over[args[0]][:n-1]
			break
		}
		delete(f.mounted, args[0])
	}
	if ans, ok := f.answers[line]; ok {
		return []byte(ans), nil
	}
	if name == "blkid" {
		return nil, &ExitError{Command: line, Code: 2}
	}
	return nil, nil
}

func (f *fakeSys) MountsAt(path string) ([]Mount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Mount
	if f.mounted[path] {
		src := f.sources[path]
		m := Mount{Dev: f.devNumberLocked(src), FSType: "ext4", Source: src}
		if strings.HasPrefix(src, "holdfast-") {
			m.FSType = "fuse.holdfast"
		}
		out = append(out, m)
	}
	return append(out, f.over[path]...), nil
}

func (f *fakeSys) DevNumber(dev string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.devnums[dev]; ok && n == "" { // no such device node
		return "", &fs.PathError{Op: "stat", Path: dev, Err: fs.ErrNotExist}
	}
	return f.devNumberLocked(dev), nil
}

func (f *fakeSys) devNumberLocked(dev string) string {
	if n, ok := f.devnums[dev]; ok {
		return n
	}
	return "num(" + dev + ")"
}

func (f *fakeSys) LoopBacking(dev string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loops[dev], nil
}

func (f *fakeSys) LoopsOf(file string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for dev, b := range f.loops {
		if b == file {
			out = append(out, dev)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeSys) DeviceMapper() bool { return f.dm }

// ran returns the calls of the given commands, in order.
func (f *fakeSys) ran(names ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		name, _, _ := strings.Cut(c, " ")
		if slices.Contains(names, name) {
			out = append(out, c)
		}
	}
	return out
}

// fakeSession is a session of disks of the given sizes whose files are
// in a temporary directory (never served: the fake attaches them).
func fakeSession(t *testing.T, sys *fakeSys, sizes ...int64) *Session {
	t.Helper()
	dir := t.TempDir()
	s := &Session{ID: NewID(), VM: "vm1", Point: "p1", MountDir: dir + "/mnt", PID: 1 << 30,
		recs: Records{Dir: dir + "/state"}, sys: sys, log: slog.New(slog.DiscardHandler)}
	for i, size := range sizes {
		s.Disks = append(s.Disks, Disk{Index: i, Size: size, File: fmt.Sprintf("%s/disk%d.img", dir, i)})
	}
	return s
}
