package instant

import (
	"errors"
	"os"
	"path/filepath"
)

// ErrNoStateDir means no state directory was given and none can be
// chosen (no home directory).
var ErrNoStateDir = errors.New("no state directory")

// StateDir returns the absolute state directory where sessions are
// recorded (Registry: dir/sessions) and keep their redo data by default:
// dir, else /var/lib/holdfast/instant as root or ~/.holdfast/instant.
func StateDir(dir string) (string, error) {
	if dir == "" {
		if os.Geteuid() == 0 {
			dir = "/var/lib/holdfast/instant"
		} else {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", ErrNoStateDir
			}
			dir = filepath.Join(home, ".holdfast", "instant")
		}
	}
	return filepath.Abs(dir)
}

// RegistryIn is the registry of the sessions of state directory dir.
func RegistryIn(dir string) Registry { return Registry{Dir: filepath.Join(dir, "sessions")} }
