package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SystemStateDir holds the state directories of agents run as root.
const SystemStateDir = "/var/lib/holdfast"

// StateEnv is what an agent's default state directory depends on (the
// process's, injected so tests choose it).
type StateEnv struct {
	// StateDirectory is $STATE_DIRECTORY, which systemd sets for a unit
	// with StateDirectory= (a colon-separated list: the first is used).
	StateDirectory string
	UID            int    // effective user ID: 0 is root
	Home           string // home directory ("": none)
	XDGStateHome   string // $XDG_STATE_HOME ("": unset)
	SystemDir      string // "": SystemStateDir
}

// DefaultStateDir is where the agent role-name keeps its credentials unless
// told otherwise: $STATE_DIRECTORY/ROLE-NAME under systemd; else
// SystemDir/ROLE-NAME as root; else $XDG_STATE_HOME/holdfast/ROLE-NAME, or
// HOME/.local/state/holdfast/ROLE-NAME.
func DefaultStateDir(role, name string, env StateEnv) (string, error) {
	base := role + "-" + name
	unit, _, _ := strings.Cut(env.StateDirectory, ":")
	switch {
	case filepath.IsAbs(unit):
		return filepath.Join(unit, base), nil
	case env.UID == 0:
		sys := env.SystemDir
		if sys == "" {
			sys = SystemStateDir
		}
		return filepath.Join(sys, base), nil
	case filepath.IsAbs(env.XDGStateHome):
		return filepath.Join(env.XDGStateHome, "holdfast", base), nil
	case env.Home != "":
		return filepath.Join(env.Home, ".local", "state", "holdfast", base), nil
	}
	return "", errors.New("no home directory for the agent state")
}

// HasState reports whether dir holds an agent's credentials.
func HasState(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, CertFile))
	return err == nil
}

// ChooseStateDir returns def unless def holds no credentials and one of the
// directories earlier versions used (legacy, in order) does: then that one,
// and a notice for the operator saying so.
func ChooseStateDir(def string, legacy ...string) (dir, notice string) {
	if HasState(def) {
		return def, ""
	}
	for _, old := range legacy {
		if old != "" && old != def && HasState(old) {
			return old, fmt.Sprintf("using the agent state in %s, where earlier versions kept it; "+
				"the default is now %s (move it there, or keep --state-dir %s)", old, def, old)
		}
	}
	return def, ""
}
