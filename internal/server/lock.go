package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrDataDirLocked means another server process runs on the data
// directory.
var ErrDataDirLocked = errors.New("data directory is locked")

// lockName is the lock file in the data directory. The server holds an
// exclusive flock on it for as long as it runs; the kernel releases it when
// the process ends, however it ends. The file holds the holder's PID.
const lockName = "server.lock"

// lockDataDir takes the data directory's lock, or returns ErrDataDirLocked
// naming the directory and the holder's PID.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
		}
		holder := "another holdfast server"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf("another holdfast server (pid %d)", pid)
			}
		}
		return nil, fmt.Errorf("%w: %s is in use by %s; stop it or give another --data-dir", ErrDataDirLocked, dir, holder)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
