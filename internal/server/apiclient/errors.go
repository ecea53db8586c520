package apiclient

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// answerError decodes an error answer into an *apitypes.Error, wrapped
// with the status: "server answered HTTP 409: …".
func answerError(status int, data []byte) error {
	var body apitypes.ErrorBody
	if json.Unmarshal(data, &body) != nil || body.Error == "" {
		body.Error = strings.TrimSpace(http.StatusText(status))
	}
	return fmt.Errorf("server answered HTTP %d: %w", status,
		&apitypes.Error{Status: status, Code: body.Code, Message: body.Error})
}
