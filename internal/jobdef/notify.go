package jobdef

import (
	"fmt"
	"slices"
	"strings"
)

// Results a notification rule may send on (On).
const (
	NotifyFailure = "failure"
	NotifyWarning = "warning"
	NotifySuccess = "success"
)

// DefaultNotifyOn is what a rule without "on" sends on.
var defaultNotifyOn = []string{NotifyFailure, NotifyWarning}

// Notify is one notification rule of a job:
//
//	"notify": [{"target": "ops-mail", "on": ["failure", "warning"]},
//	           {"target": "chat", "on": ["success"]}]
//
// Target names a notification target of the server (holdfast
// notification add); On lists the session results that send a message
// (none: failure and warning). A cancelled session sends nothing.
type Notify struct {
	Target string   `json:"target"`
	On     []string `json:"on,omitempty"`
}

// Events returns the results the rule sends on.
func (n Notify) Events() []string {
	if len(n.On) == 0 {
		return defaultNotifyOn
	}
	return n.On
}

// Sends reports whether the rule sends a message for a session that ended
// in state (success, warning, failed, cancelled).
func (n Notify) Sends(state string) bool {
	ev := ""
	switch state {
	case "failed":
		ev = NotifyFailure
	case "warning":
		ev = NotifyWarning
	case "success":
		ev = NotifySuccess
	}
	return ev != "" && slices.Contains(n.Events(), ev)
}

// String renders the rule as --notify takes it: NAME:failure,warning.
func (n Notify) String() string { return n.Target + ":" + strings.Join(n.Events(), ",") }

// ParseNotify parses NAME[:RESULT,…] (results failure, warning, success).
func ParseNotify(spec string) (Notify, error) {
	name, on, hasOn := strings.Cut(spec, ":")
	n := Notify{Target: name}
	if hasOn {
		n.On = strings.Split(on, ",")
	}
	if err := n.check(); err != nil {
		return Notify{}, fmt.Errorf("%q: %w", spec, err)
	}
	return n, nil
}

// CheckTargetName checks the name of a notification target: 1 to 64
// letters, digits, '.', '_' or '-', starting with a letter or digit.
func CheckTargetName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("notification target name %q: want 1 to 64 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			return fmt.Errorf("notification target name %q: want letters, digits, '.', '_' or '-', starting with a letter or digit", name)
		}
	}
	return nil
}

func (n Notify) check() error {
	if err := CheckTargetName(n.Target); err != nil {
		return err
	}
	if n.On != nil && len(n.On) == 0 {
		return fmt.Errorf("no results given (want %s, %s or %s)", NotifyFailure, NotifyWarning, NotifySuccess)
	}
	seen := map[string]bool{}
	for _, ev := range n.On {
		switch ev {
		case NotifyFailure, NotifyWarning, NotifySuccess:
		default:
			return fmt.Errorf("result %q: want %s, %s or %s", ev, NotifyFailure, NotifyWarning, NotifySuccess)
		}
		if seen[ev] {
			return fmt.Errorf("result %q given twice", ev)
		}
		seen[ev] = true
	}
	return nil
}

// checkNotify checks the notification rules: valid target names, each
// once, and known results.
func checkNotify(rules []Notify) error {
	seen := map[string]bool{}
	for i, n := range rules {
		field := fmt.Sprintf("definition.notify[%d]", i)
		if err := n.check(); err != nil {
			return wrapField(field, err)
		}
		if seen[n.Target] {
			return fieldErr(field+".target", "target %q named twice", n.Target)
		}
		seen[n.Target] = true
	}
	return nil
}
