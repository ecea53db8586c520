package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
)

// viaServer reports whether a command should go through the server: no
// repository is given, a server is.
func (a *app) viaServer(o *clientOptions) bool {
	if a.repoDir != "" || a.getenv("HOLDFAST_REPOSITORY") != "" {
		return false
	}
	return o.server != "" || a.getenv("HOLDFAST_SERVER") != ""
}

// runServerRestore asks the server to restore a disk through a proxy and
// waits for the session.
func runServerRestore(cmd *cobra.Command, a *app, co *clientOptions, o restoreOptions, point string) error {
	switch {
	case o.to == "":
		return usageError{errors.New("--to PATH is required")}
	case o.rollback:
		return usageError{errors.New("--rollback is not available through the server yet; restore with --repo on the host holding the disk")}
	}
	to, err := filepath.Abs(o.to)
	if err != nil {
		return err
	}
	cl, err := a.client(co)
	if err != nil {
		return err
	}
	pw := ""
	if a.passwordFile != "" {
		if pw, err = a.jobPassword(); err != nil {
			return err
		}
	}
	req := map[string]any{"point": point, "disk": o.disk, "target": to}
	if pw != "" {
		req["password"] = pw
	}
	var se sessionJSON
	if err := cl.call(cmd.Context(), "POST", "/api/v1/restores", "restore", req, &se); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "holdfast: restore session %d queued\n", se.ID)
	return a.waitSession(cmd.Context(), cl, se.ID, false)
}
