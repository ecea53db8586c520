package apiclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// answerError decodes an error answer into an *apitypes.Error, wrapped
// with the status: "server answered HTTP 409: …", and for 401 and 403
// "refused by the server: server answered HTTP 401: …".
func answerError(status int, data []byte) error {
	var body apitypes.ErrorBody
	if json.Unmarshal(data, &body) != nil || body.Error == "" {
		body.Error = strings.TrimSpace(http.StatusText(status))
	}
	ae := &apitypes.Error{Status: status, Code: body.Code, Message: body.Error}
	err := fmt.Errorf("server answered HTTP %d: %w", status, ae)
	if errors.Is(ae, apitypes.ErrRefused) {
		err = fmt.Errorf("%w: %w", apitypes.ErrRefused, err)
	}
	return err
}
