package orchestrator

import (
	"encoding/json"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
)

// parseDefinition reads a stored job definition (jobdef.Parse, lenient
// about keys an older version wrote) and validates it.
func parseDefinition(raw json.RawMessage) (jobdef.Definition, error) {
	d, err := jobdef.Parse(raw)
	if err != nil {
		return d, err
	}
	if err := d.Validate(); err != nil {
		return d, fmt.Errorf("job definition: %w", err)
	}
	return d, nil
}
