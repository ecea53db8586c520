package main

import (
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
)

// parseNotify turns --notify flags into the definition's rules; an empty
// value (job edit --notify ”) leaves none.
func parseNotify(specs []string) ([]jobdef.Notify, error) {
	var rules []jobdef.Notify
	for _, s := range specs {
		if s == "" {
			continue
		}
		n, err := jobdef.ParseNotify(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("--notify %w", err)}
		}
		rules = append(rules, n)
	}
	return rules, nil
}

// notifyRows is job show's line for the notification rules.
func notifyRows(d jobdef.Definition) [][]string {
	if len(d.Notify) == 0 {
		return nil
	}
	out := make([]string, 0, len(d.Notify))
	for _, n := range d.Notify {
		out = append(out, n.String())
	}
	return [][]string{{"Notify:", strings.Join(out, " ")}}
}
